// First: tracing must patch http, express, graphql and pg before anything loads them.
import { tracing } from './observability/start-tracing';
import os from 'node:os';
import { ConfigError, DEV_ADMIN_PASSWORD, loadConfig } from './config/config';
import { redactUrl } from './database/connection-url';
import { openEmbeddedDatabase, type EmbeddedDatabase } from './database/embedded-postgres';
import { createLogger, describeError, errorMessageOf, type Logger } from './observability/logger';
import { startServer } from './server';

/**
 * `npm start`. Without DATABASE_URL (development only) it starts an embedded PostgreSQL in
 * EMBEDDED_PG_DIR, then the server, and prints how to sign in.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  if (config.env === 'production' && !process.env.TENANT_DB_SECRET) {
    // Not an error (the contract's variables suffice), but rotating JWT_SECRET after a leak
    // would then also change every tenant role's password, and tenants could not connect.
    logger.warn(
      'TENANT_DB_SECRET is not set: tenant database passwords derive from JWT_SECRET; after rotating it, run `npm run tenants:migrate -- --force` (in a checkout or inside the image alike) or the migrateTenants(force: true) mutation',
    );
  }
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    logger.info({ dataDir: config.embeddedPostgres.dataDir, port: config.embeddedPostgres.port }, 'no DATABASE_URL: starting embedded PostgreSQL');
    embedded = await openEmbeddedDatabase(config.embeddedPostgres);
    databaseUrl = embedded.databaseUrl;
  }
  const server = await startServer({ config: { ...config, databaseUrl }, logger });

  const admin = config.bootstrapAdmin;
  const password = admin.password === DEV_ADMIN_PASSWORD ? admin.password : '(the ADMIN_PASSWORD you set)';
  const lines = [
    '',
    `  fleet-graphql is running: ${server.url}`,
    `  database: ${redactUrl(databaseUrl)}${embedded ? ` (embedded${embedded.startedBy === 'another process' ? ', already running for another process' : ''})` : ''}`,
    config.landingPage ? `  Apollo Sandbox: open ${server.url} in a browser` : '',
    '',
    '  Sign in as the platform admin:',
    `    mutation { adminLogin(email: "${admin.email}", password: "${password}") { accessToken } }`,
    '  then send the token as the header  Authorization: Bearer <accessToken>',
    '  and create a tenant:',
    '    mutation { createTenant(input: { slug: "acme", name: "Acme Logistics", plan: STANDARD,',
    '      owner: { email: "ada@acme.test", name: "Ada", password: "a-long-password" } }) { tenant { id slug status } } }',
    '',
  ];
  process.stdout.write(`${lines.filter((line, index) => line !== '' || lines[index - 1] !== '').join('\n')}\n`);

  shutDownOnSignals(config.shutdown.timeoutMs, logger, async () => {
    await server.close();
    await embedded?.stop().catch(() => undefined);
    // The last spans (the shutdown's own requests) are exported, not lost with the process.
    await tracing.shutdown().catch(() => undefined);
  });
}

/**
 * The process's one owner of SIGTERM and SIGINT (Apollo's own handler is off). The first signal
 * runs the shutdown sequence (RunningServer.close) and exits 0 when it is done, or 1 when it
 * fails or outlasts SHUTDOWN_TIMEOUT_MS; a second signal exits at once, without draining, with
 * 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a shell reports a killed process.
 */
function shutDownOnSignals(timeoutMs: number, logger: Logger, shutDown: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while shutting down: exiting now, without draining');
      process.exit(128 + (os.constants.signals[signal] ?? 15));
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'shutting down: readiness red, then no new connections; requests in flight may finish');
    setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown did not finish within SHUTDOWN_TIMEOUT_MS: exiting');
      process.exit(1);
    }, timeoutMs).unref();
    shutDown().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: describeError(error) }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`fleet-graphql failed to start: ${errorMessageOf(error)}\n`);
  }
  process.exit(1);
});
