import { spawnSync } from 'node:child_process';
import path from 'node:path';

/*
 * Each .prisma file matches its migrations, and the schema engine can diff them at all: a
 * hand-added CHECK constraint once made Prisma's WebAssembly engine panic, which breaks
 * `npm run migration:new` for everyone after. Runs the real command in its check mode (which
 * writes nothing) against the test PostgreSQL.
 */

const ROOT = path.resolve(__dirname, '../..');

describe.each(['tenant', 'platform'])('%s migrations', (target) => {
  it('match prisma/<target>.prisma, and the schema engine diffs them without failing', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/new-migration.ts', target, '--check'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: process.env.FLEET_TEST_POSTGRES_URL ?? process.env.DATABASE_URL },
      timeout: 120_000,
    });
    expect({ status: result.status, stdout: result.stdout, stderr: result.stderr.slice(0, 2000) }).toEqual({
      status: 0,
      stdout: expect.stringContaining('matches its migrations') as unknown,
      stderr: expect.any(String) as unknown,
    });
  }, 150_000);
});
