import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { makeExecutableSchema } from '@graphql-tools/schema';
import DataLoader from 'dataloader';
import express from 'express';
import pg from 'pg';
import type { Resolvers } from '../src/generated/graphql';
import type { Driver, Vehicle } from '../src/generated/prisma/tenant/client';
import { toGlobalId } from '../src/graphql/global-id';
import { pageRequest, toConnection } from '../src/graphql/pagination';
import { scalarResolvers } from '../src/graphql/scalars';
import { loadTypeDefs } from '../src/graphql/schema';
import { countingPool, STATS_PATH, type ServedCounts } from './lib/statement-counts';

/*
 * The GraphQL floor: what a hand-written Apollo server costs on the same SQL, without Prisma.
 * The same SDL, the same HTTP stack (express 5 + Apollo's express integration) and the same
 * global ids and connection model (src/graphql/global-id, src/graphql/pagination) as the tenant
 * server, resolvers for the vehicles page only, written on `pg` (pool max 10): the page in one
 * statement, the page's drivers through a per-request DataLoader in one `WHERE id = ANY($1)`,
 * totalCount as one `count(*)`. No Prisma, no authentication, no limits, no tenancy: one
 * tenant's schema, named in the SQL.
 *
 *   node --import tsx bench/bare-pg-server.ts '{"databaseUrl":"postgres://...","schema":"t_x","poolMax":10}'
 *
 * Prints {"url": ...} on stdout once it listens; GET /stats answers the requests served and the
 * SQL statements sent so far; stops on SIGTERM.
 */

interface PgContext {
  drivers: DataLoader<string, Driver | null>;
}

/** Every column, as Prisma selects them, so rows are the models the resolvers expect. */
const VEHICLE_COLUMNS = '"id", "plate", "make", "model", "year", "status", "odometerKm", "driverId", "createdAt", "updatedAt"';
const DRIVER_COLUMNS = '"id", "name", "licenseNumber", "phone", "email", "status", "createdAt", "updatedAt"';

function fleetSql(schemaName: string) {
  const schema = pg.Client.prototype.escapeIdentifier(schemaName);
  return {
    firstPage: `SELECT ${VEHICLE_COLUMNS} FROM ${schema}."Vehicle" ORDER BY "id" ASC LIMIT $1`,
    pageAfter: `SELECT ${VEHICLE_COLUMNS} FROM ${schema}."Vehicle" WHERE "id" > $2 ORDER BY "id" ASC LIMIT $1`,
    drivers: `SELECT ${DRIVER_COLUMNS} FROM ${schema}."Driver" WHERE "id" = ANY($1)`,
    count: `SELECT count(*) AS "count" FROM ${schema}."Vehicle"`,
  };
}

function pgResolvers(pool: pg.Pool, sql: ReturnType<typeof fleetSql>): Resolvers<PgContext> {
  return {
    Query: {
      vehicles: async (_root, args) => {
        if (args.filter) throw new Error('this baseline answers unfiltered pages only');
        const page = pageRequest(args.first, args.after);
        const { rows } = page.after
          ? await pool.query<Vehicle>(sql.pageAfter, [page.take + 1, page.after.id])
          : await pool.query<Vehicle>(sql.firstPage, [page.take + 1]);
        return toConnection(rows, page, async () => Number((await pool.query<{ count: string }>(sql.count)).rows[0]?.count));
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
function driverLoader(pool: pg.Pool, sql: ReturnType<typeof fleetSql>): DataLoader<string, Driver | null> {
  return new DataLoader(async (ids) => {
    const { rows } = await pool.query<Driver>(sql.drivers, [[...ids]]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema: string; poolMax?: number };
  const counts: ServedCounts = { requests: 0, statements: 0 };
  const pool = countingPool({ connectionString: options.databaseUrl, max: options.poolMax ?? 10 }, counts);
  const sql = fleetSql(options.schema);

  const schema = makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers: [scalarResolvers, pgResolvers(pool, sql)] });
  const apollo = new ApolloServer<PgContext>({ schema });
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
        return { drivers: driverLoader(pool, sql) };
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
      .then(() => pool.end())
      .finally(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
