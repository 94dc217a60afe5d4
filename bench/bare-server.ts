import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { PrismaPg } from '@prisma/adapter-pg';
import express from 'express';
import { createFleetLoaders } from '../src/fleet/fleet-loaders';
import { fleetResolvers } from '../src/fleet/fleet.resolvers';
import type { FleetScope } from '../src/fleet/vehicles';
import { PrismaClient as TenantPrismaClient } from '../src/generated/prisma/tenant/client';
import { scalarResolvers } from '../src/graphql/scalars';
import { loadTypeDefs } from '../src/graphql/schema';
import { countingPool, STATS_PATH, type ServedCounts } from './lib/statement-counts';

/*
 * The baseline the tenant server is compared with: the same SDL, the same fleet resolvers and
 * DataLoaders (imported from src/fleet, nothing copied), the same HTTP stack (express 5 +
 * Apollo's express integration), but no authentication, no rate limiting, no hardening
 * plugins, no access policy and no tenancy: one plain Prisma client on one pg pool, pointed
 * at one tenant's schema.
 *
 *   node --import tsx bench/bare-server.ts '{"databaseUrl":"postgres://...","schema":"t_x","poolMax":10}'
 *
 * Prints {"url": ...} on stdout once it listens; GET /stats answers the requests served and the
 * SQL statements sent so far (counted on the pg clients under Prisma); stops on SIGTERM.
 */

interface BareContext {
  tenantScope(): FleetScope;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema: string; poolMax?: number };
  const counts: ServedCounts = { requests: 0, statements: 0 };
  const pool = countingPool({ connectionString: options.databaseUrl, max: options.poolMax ?? 10 }, counts);
  const db = new TenantPrismaClient({ adapter: new PrismaPg(pool, { schema: options.schema }) });

  // The fleet resolvers only ever call ctx.tenantScope(), which is all this context offers.
  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: [scalarResolvers, fleetResolvers] });
  const apollo = new ApolloServer<BareContext>({ schema });
  await apollo.start();

  const app = express();
  app.disable('x-powered-by');
  app.get(STATS_PATH, (_req, res) => void res.json(counts));
  app.use(
    '/graphql',
    express.json({ limit: '200kb' }),
    expressMiddleware(apollo, {
      context: async () => {
        counts.requests += 1;
        const scope: FleetScope = { db, loaders: createFleetLoaders(db) };
        return { tenantScope: () => scope };
      },
    }),
  );
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);

  process.once('SIGTERM', () => {
    server.close();
    void apollo
      .stop()
      .then(() => db.$disconnect())
      .then(() => pool.end())
      .finally(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
