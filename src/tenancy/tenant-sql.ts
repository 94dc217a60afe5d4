import type pg from 'pg';
import type { Prisma } from '../generated/prisma/tenant/client';

/**
 * Reads as one SQL statement each, sent on the tenant's own pg pool: the pool the tenant's
 * Prisma client uses, logged in as the tenant's role, whose search_path is the tenant's schema.
 * So a statement here can reach exactly what the tenant's Prisma client can (the database
 * refuses anything else), and shares its connections, budget, statement counting and
 * statement_timeout.
 *
 * Why beside Prisma rather than through it: on the request path a list page with its to-one
 * relations is one statement here, and Prisma's model API sends one per relation; each
 * Prisma call also costs about three times the CPU of the same statement through pg (query
 * compilation, its request pipeline, result mapping; measured in docs/decisions/0007). Writes,
 * transactions and migrations stay Prisma's. Statements are composed with Prisma's own
 * `Prisma.sql` template (values always bound as parameters, never spliced into the text), and
 * name tables unqualified so that the connection's search_path, which the role cannot widen to
 * another tenant's schema, decides where they are.
 */
export class TenantSql {
  constructor(private readonly pool: pg.Pool) {}

  /** The rows of one statement, typed as the caller's model (columns as Prisma maps them). */
  async rows<Row>(statement: Prisma.Sql): Promise<Row[]> {
    const result = await this.pool.query(statement.text, statement.values);
    return result.rows as Row[];
  }
}
