import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

/*
 * The floor under both GraphQL servers: the same two queries the fleet resolvers send for
 * `vehicles(first: 20) { ... driver { name licenseNumber } }` (a page of 21 vehicles, then
 * their drivers in one `WHERE id = ANY($1)`), through pg on one pool, answered as the same
 * JSON shape over node:http. No GraphQL, no framework.
 *
 *   node --import tsx bench/raw-sql-server.ts '{"databaseUrl":"postgres://...","schema":"t_x","poolMax":10}'
 *
 * Prints {"url": ...} on stdout once it listens; stops on SIGTERM.
 */

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

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema: string; poolMax?: number };
  const schema = pg.Client.prototype.escapeIdentifier(options.schema);
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolMax ?? 10 });
  // Every column, as Prisma selects them.
  const vehiclesSql = `SELECT "id", "plate", "make", "model", "year", "status", "odometerKm", "driverId", "createdAt", "updatedAt"
                         FROM ${schema}."Vehicle" ORDER BY "id" ASC LIMIT ${PAGE + 1}`;
  const driversSql = `SELECT "id", "name", "licenseNumber", "phone", "email", "status", "createdAt", "updatedAt"
                        FROM ${schema}."Driver" WHERE "id" = ANY($1)`;

  const answer = async (): Promise<string> => {
    const vehicles = (await pool.query<VehicleRow>(vehiclesSql)).rows.slice(0, PAGE);
    const driverIds = [...new Set(vehicles.map((vehicle) => vehicle.driverId).filter((id): id is string => id !== null))];
    const drivers = new Map<string, DriverRow>();
    if (driverIds.length > 0) {
      for (const row of (await pool.query<DriverRow>(driversSql, [driverIds])).rows) drivers.set(row.id, row);
    }
    const edges = vehicles.map((vehicle) => {
      const driver = vehicle.driverId ? drivers.get(vehicle.driverId) : undefined;
      return {
        node: {
          plate: vehicle.plate,
          make: vehicle.make,
          model: vehicle.model,
          driver: driver ? { name: driver.name, licenseNumber: driver.licenseNumber } : null,
        },
      };
    });
    return JSON.stringify({ data: { vehicles: { edges } } });
  };

  const server = http.createServer((req, res) => {
    req.resume(); // the request body (the GraphQL query) is not needed
    req.on('end', () => {
      answer().then(
        (body) => {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          res.end(body);
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
