import { Writable } from 'node:stream';
import pino from 'pino';
import { bearer, postJson } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/*
 * Every operation leaves one log line, whether Apollo ran it or the request guard refused it
 * first (a refusal of a signed-in caller; signed-out refusals are only counted, see /metrics).
 * The server logs through a real pino logger into memory.
 */

const lines: Record<string, unknown>[] = [];
let app: TestServer;
let tenant: TenantFixture;

beforeAll(async () => {
  const memory = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  app = await startTestServer({ logger: pino({ level: 'info' }, memory) });
  tenant = await app.createTenant();
});

afterAll(async () => {
  await app?.close();
});

const linesOf = (requestId: string | null) => lines.filter((line) => line.requestId === requestId);

describe('the operation log', () => {
  it('writes one line per operation run: request id, operation, principal, tenant, duration and outcome, and no credential', async () => {
    const response = await postJson(app.url, { query: 'query Fleet { vehicles(first: 2) { totalCount } }' }, bearer(tenant.ownerToken));
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    const [line, ...more] = linesOf(requestId);
    expect(more).toEqual([]);
    expect(line).toMatchObject({ msg: 'graphql operation', operationName: 'Fleet', operation: 'query', principal: 'member', tenant: tenant.slug, outcome: 'ok' });
    expect(typeof line?.durationMs).toBe('number');
    expect(JSON.stringify(lines)).not.toContain(tenant.ownerToken);
  });

  it('writes one line for an operation the request guard refused before Apollo saw it', async () => {
    // The same field 30 times: refused on the token stream, before parsing.
    const response = await postJson(app.url, { query: `{ ${'__typename '.repeat(30)}}` }, bearer(tenant.ownerToken));
    const requestId = response.headers.get('x-request-id');
    const codes = response.body.errors?.map((error) => error.extensions?.code);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(linesOf(requestId)).toEqual([
      expect.objectContaining({ msg: 'graphql request refused', principal: 'member', tenant: tenant.slug, outcome: codes?.[0] }),
    ]);
  });
});
