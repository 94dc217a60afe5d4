import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/*
 * A real PgBouncer (Debian's `pgbouncer` package; `.ci/run` installs it when missing) in front of
 * the test PostgreSQL, with a generated config: transaction pooling, `poolSize` server
 * connections per (database, user) pool, SCRAM logins checked against PostgreSQL's own
 * verifiers through auth_query, so tenant roles log in with their own passwords.
 */

export const PGBOUNCER_ADMIN_PASSWORD = 'pgbouncer-admin-test';

export interface RunningPgBouncer {
  port: number;
  /** postgresql://127.0.0.1:<port> (no database: the server adds DATABASE_URL's). */
  url: string;
  /** The admin console (SHOW POOLS, SHOW SERVERS) as `postgres`. */
  adminConfig: { host: string; port: number; user: string; password: string; database: string };
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`pgbouncer did not listen on ${port}: ${log()}`);
}

export async function startPgBouncer(postgresUrl: string, options: { poolSize: number }): Promise<RunningPgBouncer> {
  const upstream = new URL(postgresUrl);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-pgbouncer-'));
  // Run as root, pgbouncer must drop to another user, which then reads this folder.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const logFile = path.join(dir, 'pgbouncer.log');
  const superuser = decodeURIComponent(upstream.username) || 'postgres';
  writeFileSync(path.join(dir, 'userlist.txt'), `"${superuser}" "${PGBOUNCER_ADMIN_PASSWORD}"\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `auth_user = ${superuser}`,
      'auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1',
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      'max_client_conn = 500',
      `admin_users = ${superuser}`,
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${logFile}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  // Debian puts it in /usr/sbin, which a non-root PATH may lack.
  const binary = existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer';
  const child = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '(no log)';
    }
  };
  await waitForPort(port, child, log);
  return {
    port,
    url: `postgresql://127.0.0.1:${port}`,
    adminConfig: { host: '127.0.0.1', port, user: superuser, password: PGBOUNCER_ADMIN_PASSWORD, database: 'pgbouncer' },
    log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
