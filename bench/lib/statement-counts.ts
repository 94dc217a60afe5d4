import pg from 'pg';

/*
 * SQL statements per request, counted where they are sent: on the pg client that sends them.
 * The tenant server counts its tenant connections' statements the same way (a pg.Client
 * subclass, into fleet_tenant_sql_statements_total); the baseline servers count theirs with
 * countingPool() and answer GET /stats with these counts, so the bench divides statements by
 * the requests the server itself answered (the load generator's own count leaves out requests
 * still in flight when a round ends). Loaded by the baselines and by the bench: keep it small.
 */

export interface ServedCounts {
  /** GraphQL requests the server has answered (or started to answer). */
  requests: number;
  /** SQL statements its pg clients have sent. */
  statements: number;
}

/** Where a baseline server answers its ServedCounts as JSON. */
export const STATS_PATH = '/stats';

/** A pg pool whose clients count every statement they send into `counts`. */
export function countingPool(config: pg.PoolConfig, counts: ServedCounts): pg.Pool {
  class CountingClient extends pg.Client {
    // pg's query() has many overloads; counting needs none of their types.
    override query(...args: unknown[]): never {
      counts.statements += 1;
      return (super.query as (...queryArgs: unknown[]) => never)(...args);
    }
  }
  return new pg.Pool({ ...config, Client: CountingClient });
}

/** A server's counts now, from its GET /stats (next to its GraphQL URL). */
export async function fetchServedCounts(graphqlUrl: string): Promise<ServedCounts> {
  const response = await fetch(new URL(STATS_PATH, graphqlUrl));
  if (!response.ok) throw new Error(`${STATS_PATH} answered HTTP ${response.status}`);
  return (await response.json()) as ServedCounts;
}
