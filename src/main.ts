import { ConfigError, DEV_ADMIN_PASSWORD, loadConfig } from './config/config';
import { redactUrl } from './database/connection-url';
import { openEmbeddedDatabase, type EmbeddedDatabase } from './database/embedded-postgres';
import { createLogger, describeError, errorMessageOf } from './observability/logger';
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

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await server.close().catch((error: unknown) => logger.error({ err: describeError(error) }, 'error while closing the server'));
    await embedded?.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`fleet-graphql failed to start: ${errorMessageOf(error)}\n`);
  }
  process.exit(1);
});
