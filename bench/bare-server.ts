import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { PrismaPg } from '@prisma/adapter-pg';
import DataLoader from 'dataloader';
import express from 'express';
import type { Resolvers } from '../src/generated/graphql';
import { PrismaClient as TenantPrismaClient, type Driver } from '../src/generated/prisma/tenant/client';
import { toGlobalId } from '../src/graphql/global-id';
import { pageRequest, toConnection } from '../src/graphql/pagination';
import { scalarResolvers } from '../src/graphql/scalars';
import { loadTypeDefs } from '../src/graphql/schema';
import type { TenantPrisma } from '../src/tenancy/tenant-client-pool';
import { countingPool, STATS_PATH, type ServedCounts } from './lib/statement-counts';

/*
 * The Apollo + Prisma baseline: what the usual way of writing this server costs. The same SDL,
 * the same HTTP stack (express 5 + Apollo's express integration), the same global ids and
 * connection model as the tenant server, resolvers for the vehicles page written on Prisma's
 * model API (the tenant server's data path before docs/decisions/0007): the page with
 * findMany, the page's drivers through a per-request DataLoader on one findMany, totalCount with
 * count. One plain Prisma client on one pg pool, pointed at one tenant's schema; no
 * authentication, no limits, no tenancy.
 *
 *   node --import tsx bench/bare-server.ts '{"databaseUrl":"postgres://...","schema":"t_x","poolMax":10}'
 *
 * Prints {"url": ...} on stdout once it listens; GET /stats answers the requests served and the
 * SQL statements sent so far (counted on the pg clients under Prisma); stops on SIGTERM.
 */

interface PrismaContext {
  drivers: DataLoader<string, Driver | null>;
}

function prismaResolvers(db: TenantPrisma): Resolvers<PrismaContext> {
  return {
    Query: {
      vehicles: async (_root, args) => {
        if (args.filter) throw new Error('this baseline answers unfiltered pages only');
        const page = pageRequest(args.first, args.after);
        const rows = await db.vehicle.findMany({
          ...(page.after ? { where: { id: { gt: page.after.id } } } : {}),
          orderBy: { id: 'asc' },
          take: page.take + 1,
        });
        return toConnection(rows, page, () => db.vehicle.count());
      },
    },
    Vehicle: {
      id: (vehicle) => toGlobalId('Vehicle', vehicle.id),
      driver: (vehicle, _args, ctx) => (vehicle.driverId ? ctx.drivers.load(vehicle.driverId) : null),
    },
    Driver: {
      id: (driver) => toGlobalId('Driver', driver.id),
    },
    VehicleConnection: {
      totalCount: (connection) => connection.totalCount(),
    },
  };
}

/** One batched query per request for every driver the page names. */
function driverLoader(db: TenantPrisma): DataLoader<string, Driver | null> {
  return new DataLoader(async (ids) => {
    const byId = new Map((await db.driver.findMany({ where: { id: { in: [...ids] } } })).map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema: string; poolMax?: number };
  const counts: ServedCounts = { requests: 0, statements: 0 };
  const pool = countingPool({ connectionString: options.databaseUrl, max: options.poolMax ?? 10 }, counts);
  const db = new TenantPrismaClient({ adapter: new PrismaPg(pool, { schema: options.schema }) });

  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: [scalarResolvers, prismaResolvers(db)] });
  const apollo = new ApolloServer<PrismaContext>({ schema });
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
        return { drivers: driverLoader(db) };
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
