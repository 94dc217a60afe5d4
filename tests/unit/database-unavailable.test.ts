import { PrismaPg } from '@prisma/adapter-pg';
import { GraphQLError } from 'graphql';
import pg from 'pg';
import { isDatabaseUnavailable } from '../../src/database/prisma-errors';
import { PrismaClient as TenantPrismaClient } from '../../src/generated/prisma/tenant/client';
import { createErrorFormatter } from '../../src/graphql/format-error';
import { createLogger } from '../../src/observability/logger';
import { freePort } from '../support/local-resources';

/*
 * Errors from real connection attempts to a port nothing listens on, as Prisma (through the pg
 * driver adapter) and pg itself report them.
 */

async function failure(attempt: () => Promise<unknown>): Promise<unknown> {
  try {
    await attempt();
  } catch (error) {
    return error;
  }
  throw new Error('expected the attempt to fail');
}

let closedUrl: string;

beforeAll(async () => {
  closedUrl = `postgresql://postgres@127.0.0.1:${await freePort()}/test`;
});

describe('a database that cannot be reached', () => {
  it('is recognised in what Prisma throws, and answered SERVICE_UNAVAILABLE with retryAfter, naming no host or port', async () => {
    const prisma = new TenantPrismaClient({ adapter: new PrismaPg({ connectionString: closedUrl }) });
    const error = await failure(() => prisma.vehicle.findMany());
    await prisma.$disconnect();
    expect(isDatabaseUnavailable(error)).toBe(true);

    const format = createErrorFormatter(createLogger('silent'), { hideSuggestions: true });
    const wrapped = new GraphQLError(String((error as Error).message), { path: ['vehicles'], originalError: error as Error });
    const formatted = format({ message: wrapped.message, path: ['vehicles'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }, wrapped);
    expect(formatted.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503, retryAfter: 1 });
    expect(JSON.stringify(formatted)).not.toMatch(/127\.0\.0\.1|P1001|invocation|\d{4,5}\//);
  });

  it('is recognised in what pg throws', async () => {
    const client = new pg.Client({ connectionString: closedUrl });
    expect(isDatabaseUnavailable(await failure(() => client.connect()))).toBe(true);
  });

  it('is not confused with errors that retrying would not cure', async () => {
    expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
    expect(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
  });
});
