import path from 'node:path';
import { migrateDeployCommand, schemaUrl } from '../../src/migrations/cli-migrator';
import type { MigrationTarget } from '../../src/migrations/migrator';

const target = (connection: MigrationTarget['connection'], schema = 't_acme'): MigrationTarget => ({ connection, schema });

describe('schemaUrl', () => {
  it('builds a postgresql:// URL with the role, password, database and ?schema=', () => {
    const url = schemaUrl(target({ host: '127.0.0.1', port: 5433, database: 'fleet', user: 'fg_0a1b2c3d_acme', password: 'secret' }));
    expect(url).toBe('postgresql://fg_0a1b2c3d_acme:secret@127.0.0.1:5433/fleet?schema=t_acme');
    const parsed = new URL(url);
    expect(parsed.searchParams.get('schema')).toBe('t_acme');
  });

  it('defaults the port to 5432 and leaves out a missing password', () => {
    const url = schemaUrl(target({ host: 'db.internal', database: 'fleet', user: 'owner' }));
    expect(url).toBe('postgresql://owner@db.internal:5432/fleet?schema=t_acme');
  });

  it('percent-encodes a password (base64url or otherwise) so it survives URL parsing', () => {
    const password = 'p@ss:w/rd?#%&=+ x';
    const url = schemaUrl(target({ host: 'h', port: 5432, database: 'my db', user: 'u', password }));
    const parsed = new URL(url);
    expect(decodeURIComponent(parsed.password)).toBe(password);
    expect(decodeURIComponent(parsed.username)).toBe('u');
    expect(decodeURIComponent(parsed.pathname.slice(1))).toBe('my db');
    expect(parsed.host).toBe('h:5432');
    expect(parsed.searchParams.get('schema')).toBe('t_acme');
    expect([...parsed.searchParams.keys()]).toEqual(['schema']);
  });

  it('refuses a target without host, database or user', () => {
    expect(() => schemaUrl(target({ database: 'fleet', user: 'u' }))).toThrow('needs host, database and user');
    expect(() => schemaUrl(target({ host: 'h', user: 'u' }))).toThrow('needs host, database and user');
    expect(() => schemaUrl(target({ host: 'h', database: 'fleet' }))).toThrow('needs host, database and user');
  });
});

describe('migrateDeployCommand', () => {
  const deployTarget = target({ host: '127.0.0.1', port: 5432, database: 'fleet', user: 'fg_0a1b2c3d_acme', password: 'pw' }, 't_acme');
  const configFile = path.join('/srv/app', 'prisma', 'tenant.config.ts');

  it('runs the installed prisma CLI with node: migrate deploy --config <file>', () => {
    const { command, args } = migrateDeployCommand(deployTarget, configFile);
    expect(command).toBe(process.execPath);
    expect(args[0]).toBe(require.resolve('prisma/build/index.js'));
    expect(args.slice(1)).toEqual(['migrate', 'deploy', '--config', configFile]);
  });

  it('passes the schema URL as DATABASE_URL and keeps the rest of the environment', () => {
    const { env } = migrateDeployCommand(deployTarget, configFile);
    expect(env.DATABASE_URL).toBe(schemaUrl(deployTarget));
    expect(new URL(env.DATABASE_URL ?? '').searchParams.get('schema')).toBe('t_acme');
    expect(env.PRISMA_HIDE_UPDATE_MESSAGE).toBe('1');
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('does not change the environment of this process', () => {
    const before = process.env.DATABASE_URL;
    migrateDeployCommand(deployTarget, configFile);
    expect(process.env.DATABASE_URL).toBe(before);
  });
});
