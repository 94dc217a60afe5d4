import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { toGlobalId } from '../src/graphql/global-id';
import { countingPool, STATS_PATH, type ServedCounts } from './lib/statement-counts';

/*
 * The floor under the GraphQL servers: the SQL statements the fleet resolvers send for a first
 * page of vehicles with their drivers (a page of 21 vehicles, then their drivers in one
 * `WHERE id = ANY($1)`, and a `count(*)` when totalCount is asked for), through pg on one pool,
 * answered as the same JSON over node:http. No GraphQL, no framework. It answers one shape,
 * named by the `shape` option:
 *
 *   request  `vehicles(first: 20) { edges { node { plate make model driver { name licenseNumber } } } }`
 *   hot      `vehicles(first: 20) { totalCount edges { node { id plate driver { name } } } }`, with
 *            totalCount (and its count(*)) only when the request's body names it: the one thing
 *            read from the request.
 *
 *   node --import tsx bench/raw-sql-server.ts '{"databaseUrl":"postgres://...","schema":"t_x","poolMax":10,"shape":"hot"}'
 *
 * Prints {"url": ...} on stdout once it listens; GET /stats answers the requests served and the
 * SQL statements sent so far; stops on SIGTERM.
 */

type RawShape = 'request' | 'hot';

interface VehicleRow {
  id: string;
  plate: string;
  make: string;
  model: string;
  driverId: string | null;
}

interface DriverRow {
  id: string;
  name: string;
  licenseNumber: string;
}

const PAGE = 20;

/** What one edge's node is in each shape, built from the vehicle and its driver. */
const NODES: Record<RawShape, (vehicle: VehicleRow, driver: DriverRow | undefined) => object> = {
  request: (vehicle, driver) => ({
    plate: vehicle.plate,
    make: vehicle.make,
    model: vehicle.model,
    driver: driver ? { name: driver.name, licenseNumber: driver.licenseNumber } : null,
  }),
  hot: (vehicle, driver) => ({ id: toGlobalId('Vehicle', vehicle.id), plate: vehicle.plate, driver: driver ? { name: driver.name } : null }),
};

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema: string; poolMax?: number; shape?: RawShape };
  const shape = options.shape ?? 'request';
  if (!Object.hasOwn(NODES, shape)) throw new Error(`unknown shape ${shape}: one of ${Object.keys(NODES).join(', ')}`);
  const schema = pg.Client.prototype.escapeIdentifier(options.schema);
  const counts: ServedCounts = { requests: 0, statements: 0 };
  const pool = countingPool({ connectionString: options.databaseUrl, max: options.poolMax ?? 10 }, counts);
  // Every column, as Prisma selects them.
  const vehiclesSql = `SELECT "id", "plate", "make", "model", "year", "status", "odometerKm", "driverId", "createdAt", "updatedAt"
                         FROM ${schema}."Vehicle" ORDER BY "id" ASC LIMIT ${PAGE + 1}`;
  const driversSql = `SELECT "id", "name", "licenseNumber", "phone", "email", "status", "createdAt", "updatedAt"
                        FROM ${schema}."Driver" WHERE "id" = ANY($1)`;
  const countSql = `SELECT count(*) AS "count" FROM ${schema}."Vehicle"`;

  const driversOf = async (vehicles: VehicleRow[]): Promise<Map<string, DriverRow>> => {
    const driverIds = [...new Set(vehicles.map((vehicle) => vehicle.driverId).filter((id): id is string => id !== null))];
    const drivers = new Map<string, DriverRow>();
    if (driverIds.length > 0) {
      for (const row of (await pool.query<DriverRow>(driversSql, [driverIds])).rows) drivers.set(row.id, row);
    }
    return drivers;
  };
  const totalCount = async (): Promise<number> => Number((await pool.query<{ count: string }>(countSql)).rows[0]?.count);

  const answer = async (withTotalCount: boolean): Promise<string> => {
    const vehicles = (await pool.query<VehicleRow>(vehiclesSql)).rows.slice(0, PAGE);
    // As in GraphQL execution, the count and the drivers are asked for at the same time.
    const [drivers, total] = await Promise.all([driversOf(vehicles), withTotalCount ? totalCount() : undefined]);
    const edges = vehicles.map((vehicle) => ({ node: NODES[shape](vehicle, vehicle.driverId ? drivers.get(vehicle.driverId) : undefined) }));
    return JSON.stringify({ data: { vehicles: total === undefined ? { edges } : { totalCount: total, edges } } });
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === STATS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(counts));
      return;
    }
    counts.requests += 1;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      answer(shape === 'hot' && body.includes('totalCount')).then(
        (text) => {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(error));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);

  process.once('SIGTERM', () => {
    server.close();
    void pool.end().finally(() => process.exit(0));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
