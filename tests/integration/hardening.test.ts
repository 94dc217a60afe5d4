import { bearer, codesOf, getGraphQL, postJson, type RawBody, type RawResponse } from '../support/raw-graphql';
import { startTestServer, type TenantFixture, type TestServer } from '../support/test-server';
import { graphql } from '../generated';

/*
 * Hostile documents over HTTP. Each is refused with its own code and a 4xx status, and fast: a
 * refusal must cost less than the attack (< 1 s here, on a loaded two-core machine; a real
 * one takes milliseconds). Every limit is configurable, and field suggestions are hidden in
 * production.
 */

/** Well above what any refusal takes, well below what an executed attack would. */
const FAST_MS = 1_000;

let app: TestServer;
let tenant: TenantFixture;

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant(undefined, 'ENTERPRISE');
  // A few rows, so the documents that pass have something to return.
  for (let i = 1; i <= 3; i += 1) {
    await tenant.owner.request(graphql(`mutation HardeningSeedVehicle($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id } } }`), {
      input: { plate: `HARD-${i}`, make: 'Make', model: 'Model', year: 2020 },
    });
  }
});

afterAll(async () => {
  await app?.close();
});

const asOwner = () => bearer(tenant.ownerToken);

function post(server: TestServer, payload: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return postJson(server.url, payload, headers);
}

/** Refused, with exactly this code, this status, no data, and fast. */
function expectRefused(response: RawResponse, code: string, status = 400): void {
  expect({ status: response.status, codes: codesOf(response) }).toEqual({ status, codes: [code] });
  expect(response.body.data ?? null).toBeNull();
  expect(response.ms).toBeLessThan(FAST_MS);
}

function expectServed(response: RawResponse): void {
  expect(response.body.errors).toBeUndefined();
  expect(response.status).toBe(200);
  expect(response.body.data).toEqual(expect.any(Object));
}

/** `vehicle(id:) { driver { vehicle { driver ... { id } } } }`: `depth` levels of fields. */
function nested(depth: number): string {
  let selection = '{ id }';
  for (let level = depth - 1; level >= 2; level -= 1) selection = `{ ${level % 2 === 0 ? 'driver' : 'vehicle'} ${selection} }`;
  return `query Deep($id: ID!) { vehicle(id: $id) ${selection} }`;
}

/** Aliases of a real field (graphql-armor does not count aliases of __typename). */
function aliases(count: number): string {
  return `{ ${Array.from({ length: count }, (_, i) => `a${i}: me { id }`).join(' ')} }`;
}

/** Directives without aliases or repeated fields: one spread of the same fragment per directive. */
function directives(count: number): string {
  return `{ ${Array.from({ length: count }, () => '...T @include(if: true)').join(' ')} } fragment T on Query { __typename }`;
}

/**
 * A document of exactly `count` lexical tokens, nearly all in a variable's default list, so no
 * other limit (selections, repeated fields) applies. It does not validate ($pad is unused):
 * what matters is whether the token limit lets it through to validation.
 */
function tokens(count: number): string {
  // query Tokens ( $ pad : [ Int ] = [ ... ] ) { __typename }: 16 tokens around the list.
  return `query Tokens($pad: [Int] = [${' 0'.repeat(count - 16)} ]) { __typename }`;
}

/** A realistic document of about 1,000 tokens that runs: 20 aliased pages with their fields. */
function longRealisticQuery(): string {
  const page = (i: number) =>
    `p${i}: vehicles(first: 1, filter: { status: ACTIVE, search: "x${i}" }) { totalCount edges { cursor node { id plate make model year status odometerKm driver { id name licenseNumber phone status } } } pageInfo { hasNextPage endCursor } }`;
  return `query Long { ${Array.from({ length: 20 }, (_, i) => page(i)).join(' ')} }`;
}

const FRAGMENT_CYCLE = `query Cycle { vehicles(first: 1) { edges { node { ...V } } } }
fragment V on Vehicle { plate driver { ...D } }
fragment D on Driver { name vehicle { ...V } }`;

/** The most expensive shape the schema allows: 15 aliased vehicle lists, each `first` deep. */
function fanOut(first: number | '$n'): string {
  const list = (i: number) => `v${i}: vehicles(first: ${first}) { totalCount edges { node { id plate driver { id name vehicle { id plate } } } } }`;
  const head = first === '$n' ? 'query FanOut($n: Int!)' : 'query FanOut';
  return `${head} { ${Array.from({ length: 15 }, (_, i) => list(i)).join(' ')} }`;
}

describe('hostile documents, default limits', () => {
  const anyVehicleId = Buffer.from('Vehicle:00000000-0000-4000-8000-000000000000').toString('base64url');

  it('refuses 15 levels of nesting with QUERY_TOO_DEEP, and serves 5 levels', async () => {
    expectRefused(await post(app, { query: nested(15), variables: { id: anyVehicleId } }, asOwner()), 'QUERY_TOO_DEEP');
    const shallow = await post(app, { query: nested(5), variables: { id: anyVehicleId } }, asOwner());
    expectServed(shallow);
    expect(shallow.body.data).toEqual({ vehicle: null });
  });

  it('refuses 100 aliases with TOO_MANY_ALIASES', async () => {
    expectRefused(await post(app, { query: aliases(100) }, asOwner()), 'TOO_MANY_ALIASES');
    const twenty = await post(app, { query: aliases(20) }, asOwner());
    expectServed(twenty);
    expect(Object.keys(twenty.body.data ?? {})).toHaveLength(20);
  });

  it('refuses a flood of directives with TOO_MANY_DIRECTIVES', async () => {
    expectRefused(await post(app, { query: directives(200) }), 'TOO_MANY_DIRECTIVES');
    expectServed(await post(app, { query: directives(20) }));
  });

  it('refuses a fragment cycle with GRAPHQL_VALIDATION_FAILED', async () => {
    const response = await post(app, { query: FRAGMENT_CYCLE }, asOwner());
    expectRefused(response, 'GRAPHQL_VALIDATION_FAILED');
    expect(response.body.errors?.map((error) => error.message).join(' ')).toMatch(/Cannot spread fragment/);
  });

  it('refuses the most expensive fan-out with QUERY_TOO_COMPLEX and its cost, literal or through variables; first: 5 runs', async () => {
    for (const payload of [{ query: fanOut(100) }, { query: fanOut('$n'), variables: { n: 100 } }]) {
      const response = await post(app, payload, asOwner());
      expectRefused(response, 'QUERY_TOO_COMPLEX');
      const extensions = response.body.errors?.[0]?.extensions ?? {};
      expect(extensions.maxCost).toBe(10_000);
      expect(extensions.cost as number).toBeGreaterThan(10_000);
    }
    for (const payload of [{ query: fanOut(5) }, { query: fanOut('$n'), variables: { n: 5 } }]) {
      const response = await post(app, payload, asOwner());
      expectServed(response);
      const first = response.body.data?.v0 as { totalCount: number; edges: unknown[] };
      expect(first.totalCount).toBe(3);
      expect(first.edges).toHaveLength(3);
    }
  });

  it('refuses a 1 MB body with PAYLOAD_TOO_LARGE (413)', async () => {
    const payload = JSON.stringify({ query: '{ __typename }', variables: { padding: 'x'.repeat(1_000_000) } });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(1_000_000);
    expectRefused(await post(app, payload, asOwner()), 'PAYLOAD_TOO_LARGE', 413);
  });

  it('refuses a document of 5000 tokens under the body limit with TOO_MANY_TOKENS', async () => {
    const long = tokens(5_000);
    expect(Buffer.byteLength(JSON.stringify({ query: long }))).toBeLessThan(200_000);
    expectRefused(await post(app, { query: long }, asOwner()), 'TOO_MANY_TOKENS');
    // At the limit the token count lets it through (to validation, which refuses the unused variable).
    expect(codesOf(await post(app, { query: tokens(3_000) }, asOwner()))).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // A long document that is no attack runs.
    expectServed(await post(app, { query: longRealisticQuery() }, asOwner()));
  });

  it('refuses a batch (an array of operations) with BATCH_TOO_LARGE: batching is off by default', async () => {
    const batch = [{ query: '{ __typename }' }, { query: '{ me { id } }' }];
    expectRefused(await post(app, batch, asOwner()), 'BATCH_TOO_LARGE');
  });
});

/**
 * `levels` objects (or arrays) inside one another, as JSON text: `{"a":{"a":…1…}}`. Text, since
 * JSON.stringify (like the server's, before the fix) overflows the stack on a few thousand levels.
 */
function deepJson(levels: number, shape: 'object' | 'array' = 'object'): string {
  return shape === 'object' ? `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}` : `${'['.repeat(levels)}1${']'.repeat(levels)}`;
}

const CREATE_VEHICLE = 'mutation HardeningCreate($input: CreateVehicleInput!) { createVehicle(input: $input) { vehicle { id make } } }';
const VEHICLE_COUNT = '{ vehicles(first: 1) { totalCount } }';

async function vehicleCount(): Promise<number> {
  const response = await post(app, { query: VEHICLE_COUNT }, asOwner());
  expectServed(response);
  return (response.body.data?.vehicles as { totalCount: number }).totalCount;
}

function messagesOf(response: RawResponse): string {
  return (response.body.errors ?? []).map((error) => error.message).join(' ');
}

describe('hostile JSON around the document', () => {
  it('refuses variables or extensions nested 5000 levels deep (30 kB, under the body limit) with BAD_REQUEST, anonymous or not', async () => {
    const deepObject = deepJson(5_000);
    const payloads: [string, Record<string, string>][] = [
      [`{"query":"{ me { id } }","variables":{"a":${deepObject}}}`, {}],
      [`{"query":"{ __typename }","variables":{"a":${deepJson(5_000, 'array')}}}`, {}],
      [`{"query":"{ __typename }","extensions":{"a":${deepObject}}}`, {}],
      // Under a declared input-object variable, where graphql-js's coercion would walk it.
      [`{"query":${JSON.stringify(CREATE_VEHICLE)},"variables":{"input":{"plate":${deepObject},"make":"M","model":"M","year":2020}}}`, asOwner()],
      [`{"query":${JSON.stringify(CREATE_VEHICLE)},"variables":{"input":{"plate":"DEEP-1","make":"M","model":"M","year":2020,"extra":${deepObject}}}}`, asOwner()],
    ];
    for (const [body, headers] of payloads) {
      expect(Buffer.byteLength(body)).toBeLessThan(200_000);
      const response = await post(app, body, headers);
      expectRefused(response, 'BAD_REQUEST');
      expect(messagesOf(response)).toMatch(/nested more than 64 levels deep/);
    }
    expectServed(await post(app, { query: '{ __typename }' }));
  });

  it('answers deep JSON anywhere else in the request without a 500: refused with a 4xx, or ignored', async () => {
    const deep = deepJson(5_000);
    const outcomes: { status: number; codes: string[] }[] = [];
    for (const body of [
      `{"query":${deep}}`,
      `{"query":"{ __typename }","operationName":${deep}}`,
      `{"query":"{ __typename }","variables":${deepJson(5_000, 'array')}}`,
      `{"query":"{ __typename }","extensions":${deep}}`,
      `[${deep}]`,
      // Nothing reads a field GraphQL does not define.
      `{"query":"{ __typename }","unknownField":${deep}}`,
    ]) {
      const response = await post(app, body);
      outcomes.push({ status: response.status, codes: codesOf(response) });
    }
    expect(outcomes).toEqual([
      { status: 400, codes: ['BAD_REQUEST'] },
      { status: 400, codes: ['BAD_REQUEST'] },
      { status: 400, codes: ['BAD_REQUEST'] },
      { status: 400, codes: ['BAD_REQUEST'] },
      { status: 400, codes: ['BAD_REQUEST'] },
      { status: 200, codes: [] },
    ]);
  });

  it('serves variables and extensions nested exactly 64 levels deep', async () => {
    expectServed(await post(app, `{"query":"{ __typename }","variables":{"a":${deepJson(63)}},"extensions":{"a":${deepJson(63, 'array')}}}`));
    expectRefused(await post(app, `{"query":"{ __typename }","variables":{"a":${deepJson(64)}}}`), 'BAD_REQUEST');
  });

  it('refuses deep variables and extensions over GET as well', async () => {
    for (const params of [
      { query: '{ __typename }', variables: `{"a":${deepJson(100)}}` },
      { query: '{ __typename }', extensions: `{"a":${deepJson(100, 'array')}}` },
    ]) {
      expectRefused(await getGraphQL(app.url, params), 'BAD_REQUEST');
    }
    const served = await getGraphQL(app.url, { query: '{ __typename }', variables: `{"a":${deepJson(10)}}` });
    expect({ status: served.status, body: served.body }).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
  });

  it('refuses a lone surrogate in a variable with BAD_REQUEST and stores nothing; the same input, well formed, is created', async () => {
    const before = await vehicleCount();
    const input = { plate: 'SURR-1', make: 'a\ud800b', model: 'Model', year: 2020 };
    for (const variables of [
      { input },
      { input: { ...input, make: 'a\udc00b' } },
      // A key is a string too.
      { input: { ...input, make: 'Make' }, '\ud83d': 1 },
    ]) {
      const response = await post(app, { query: CREATE_VEHICLE, variables }, asOwner());
      expectRefused(response, 'BAD_REQUEST');
      expect(messagesOf(response)).toMatch(/malformed Unicode \(a lone surrogate\)/);
    }
    expect(await vehicleCount()).toBe(before);
    // A well-formed pair of surrogates is just a character outside the BMP.
    const created = await post(app, { query: CREATE_VEHICLE, variables: { input: { ...input, make: 'a\ud83d\ude97b' } } }, asOwner());
    expectServed(created);
    expect((created.body.data?.createVehicle as { vehicle: { make: string } }).vehicle.make).toBe('a\u{1F697}b');
    expect(await vehicleCount()).toBe(before + 1);
  });

  it('refuses a lone surrogate in the document or the operation name with BAD_REQUEST', async () => {
    for (const payload of [
      { query: 'mutation { createVehicle(input: { plate: "SURR-2", make: "a\ud800b", model: "M", year: 2020 }) { vehicle { id } } }' },
      { query: '# \udfff\n{ __typename }' },
      { query: 'query Op { __typename }', operationName: 'Op\ud800' },
    ]) {
      const response = await post(app, payload, asOwner());
      expectRefused(response, 'BAD_REQUEST');
      expect(messagesOf(response)).toMatch(/malformed Unicode \(a lone surrogate\)/);
    }
    expectServed(await post(app, { query: '{ __typename }' }, asOwner()));
  });

  it('refuses a lone surrogate in GET variables with BAD_REQUEST', async () => {
    const response = await getGraphQL(app.url, { query: 'query Q($id: ID!) { vehicle(id: $id) { id } }', variables: { id: 'x\ud800' } }, asOwner());
    expectRefused(response, 'BAD_REQUEST');
    expect(messagesOf(response)).toMatch(/malformed Unicode/);
  });
});

describe('every limit is configurable', () => {
  let tuned: TestServer;

  beforeAll(async () => {
    tuned = await startTestServer({
      env: {
        MAX_DEPTH: '3',
        MAX_ALIASES: '2',
        MAX_DIRECTIVES: '2',
        MAX_TOKENS: '60',
        MAX_COST: '50',
        MAX_BODY_BYTES: '2000',
        MAX_BATCH_SIZE: '3',
      },
    });
  });

  afterAll(async () => {
    await tuned?.close();
  });

  const vehicleId = Buffer.from('Vehicle:00000000-0000-4000-8000-000000000000').toString('base64url');

  it('MAX_DEPTH=3 refuses a depth-5 query that the default serves', async () => {
    const query = nested(5);
    expectRefused(await post(tuned, { query, variables: { id: vehicleId } }), 'QUERY_TOO_DEEP');
    expectServed(await post(app, { query, variables: { id: vehicleId } }, asOwner()));
  });

  it('MAX_ALIASES, MAX_DIRECTIVES, MAX_TOKENS and MAX_COST refuse what the defaults serve', async () => {
    const cases: [string, string][] = [
      ['TOO_MANY_ALIASES', aliases(3)],
      ['TOO_MANY_DIRECTIVES', directives(3)],
      ['TOO_MANY_TOKENS', tokens(61)],
      ['QUERY_TOO_COMPLEX', '{ vehicles(first: 10) { totalCount } }'],
    ];
    for (const [code, query] of cases) {
      expectRefused(await post(tuned, { query }), code);
      // The defaults let it through (the token document then fails validation on its unused variable).
      const underDefaults = await post(app, { query }, asOwner());
      if (code === 'TOO_MANY_TOKENS') expect(codesOf(underDefaults)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      else expectServed(underDefaults);
    }
    // At the limits themselves, documents pass.
    for (const query of [aliases(2), directives(2), tokens(60)]) {
      const response = await post(tuned, { query });
      expect(codesOf(response)).not.toEqual(expect.arrayContaining(['TOO_MANY_ALIASES', 'TOO_MANY_DIRECTIVES', 'TOO_MANY_TOKENS']));
    }
  });

  it('MAX_BODY_BYTES refuses a body that the default accepts', async () => {
    const payload = { query: '{ __typename }', variables: { padding: 'x'.repeat(3_000) } };
    expectRefused(await post(tuned, payload), 'PAYLOAD_TOO_LARGE', 413);
    expectServed(await post(app, payload));
  });

  it('MAX_BATCH_SIZE=3 serves batches of 2 and 3 and refuses 4', async () => {
    for (const size of [2, 3]) {
      const batch = Array.from({ length: size }, (_, i) => ({ query: `query Op${i} { __typename }` }));
      const response = await postJson<RawBody[]>(tuned.url, batch);
      expect(response.status).toBe(200);
      expect(response.body).toEqual(Array.from({ length: size }, () => ({ data: { __typename: 'Query' } })));
    }
    const four = Array.from({ length: 4 }, () => ({ query: '{ __typename }' }));
    expectRefused(await post(tuned, four), 'BATCH_TOO_LARGE');
  });

  it('refuses a whole batch when one entry has deep variables or a lone surrogate', async () => {
    const lone = JSON.stringify({ query: 'query Q($id: ID!) { vehicle(id: $id) { id } }', variables: { id: '\udc00' } });
    for (const bad of [`{"query":"{ __typename }","variables":{"a":${deepJson(100)}}}`, lone]) {
      const batch = `[{"query":"{ __typename }"},${bad}]`;
      expect(Buffer.byteLength(batch)).toBeLessThan(2_000);
      expectRefused(await post(tuned, batch), 'BAD_REQUEST');
    }
  });
});

describe('documents that were cheap to send and expensive to run or refuse', () => {
  it('20 vehicle pages, each with 600 __typename aliases (a 20 MB answer once): refused before parsing, nothing runs', async () => {
    const typenames = Array.from({ length: 600 }, (_, i) => `t${i}: __typename`).join(' ');
    const pages = Array.from({ length: 20 }, (_, i) => `v${i}: vehicles(first: 100) { edges { node { ...X } } }`).join(' ');
    const response = await post(app, { query: `{ ${pages} } fragment X on Vehicle { ${typenames} }` }, asOwner());
    expectRefused(response, 'TOO_MANY_SELECTIONS');
    expect(response.text.length).toBeLessThan(2_000);
  });

  it('__typename aliases count like any other alias (graphql-armor exempts them by default)', async () => {
    const query = (count: number) => `{ vehicles(first: 1) { edges { node { ${Array.from({ length: count }, (_, i) => `t${i}: __typename`).join(' ')} } } } }`;
    expectRefused(await post(app, { query: query(21) }, asOwner()), 'TOO_MANY_ALIASES');
    expectServed(await post(app, { query: query(20) }, asOwner()));
  });

  it('a query whose cost cannot be computed (fragments multiplying past 10,000 nodes) is refused QUERY_TOO_COMPLEX, not run unpriced', async () => {
    // F0 is one field; each F(i) spreads F(i-1) 21 times: 9,261 selections once inlined (under the
    // token-stream bound of 10,000), more nodes than the cost estimator visits (it counts spreads too).
    const fragments = [
      'fragment F0 on Viewer { id }',
      ...Array.from({ length: 3 }, (_, i) => `fragment F${i + 1} on Viewer { ${`...F${i} `.repeat(21)}}`),
    ];
    const response = await post(app, { query: `{ me { ...F3 } } ${fragments.join(' ')}` }, asOwner());
    expectRefused(response, 'QUERY_TOO_COMPLEX');
    expect(messagesOf(response)).toMatch(/maximum allowed number of nodes/);
  });

  it('740 copies of me{id} (5 KB): refused on the token stream with TOO_MANY_SELECTIONS, before validation', async () => {
    for (const headers of [{}, asOwner()]) {
      const response = await post(app, { query: `#${Math.random()}\n{ ${'me{id} '.repeat(740)}}` }, headers);
      expectRefused(response, 'TOO_MANY_SELECTIONS');
      expect(messagesOf(response)).toMatch(/"me" is selected more than 20 times/);
    }
  });

  it('fragments spreading fragments many times (1.7 KB multiplying past 10,000 selections) are refused on the token stream', async () => {
    const fragments = Array.from({ length: 12 }, (_, i) => `fragment F${i} on Viewer { ${i === 11 ? 'id' : `...F${i + 1} `.repeat(20)}}`);
    const response = await post(app, { query: `{ me { ...F0 } } ${fragments.join(' ')}` }, asOwner());
    expectRefused(response, 'TOO_MANY_SELECTIONS');
    expect(messagesOf(response)).toMatch(/expands to more than 10000 selections through its fragments/);
  });

  it('the same through fragments, inline or named, is refused too; a reasonable document with fragments runs', async () => {
    const inline = `{ ${Array.from({ length: 30 }, () => '... { me { id } }').join(' ')} }`;
    const named = `{ ${Array.from({ length: 30 }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: 30 }, (_, i) => `fragment F${i} on Query { me { id } }`).join(' ')}`;
    const manyFragments = `{ me { id } } ${Array.from({ length: 51 }, (_, i) => `fragment U${i} on Query { __typename }`).join(' ')}`;
    const manySelections = `{ ${Array.from({ length: 20 }, (_, i) => `m${i}: me { ${'... on Viewer { id } '.repeat(13)} }`).join(' ')} }`;
    for (const query of [inline, named, manyFragments, manySelections]) expectRefused(await post(app, { query }, asOwner()), 'TOO_MANY_SELECTIONS');
    const reasonable = `query Reasonable { me { ...Who tenant { ...T } } vehicles(first: 2) { edges { node { ...V driver { ...D } } } } }
      fragment Who on Viewer { id name role } fragment T on Tenant { slug name } fragment V on Vehicle { id plate } fragment D on Driver { id name }`;
    expectServed(await post(app, { query: reasonable }, asOwner()));
  });
});

describe('field suggestions', () => {
  const MISSPELLED = '{ vehicls(first: 1) { totalCount } }';

  async function misspelledMessage(env: Record<string, string>): Promise<string> {
    const server = await startTestServer({ env });
    try {
      const response = await post(server, { query: MISSPELLED });
      expect(response.status).toBe(400);
      expect(codesOf(response)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      return (response.body.errors ?? []).map((error) => error.message).join(' ');
    } finally {
      await server.close();
    }
  }

  it('are hidden in production', async () => {
    const message = await misspelledMessage({ NODE_ENV: 'production' });
    expect(message).toMatch(/vehicls/);
    expect(message).not.toMatch(/Did you mean/i);
    expect(message).not.toMatch(/"vehicles"/);
  });

  it('of any kind are hidden in production: enum values of variables and literals, arguments, types', async () => {
    const server = await startTestServer({ env: { NODE_ENV: 'production' } });
    try {
      const attempts: [string, unknown][] = [
        [
          'mutation($p: TenantPlan!) { createTenant(input: { slug: "x-y", name: "X", plan: $p, owner: { email: "a@b.test", name: "A", password: "a-long-password" } }) { tenant { id } } }',
          { p: 'ENTERPRIS' },
        ],
        ['query($s: VehicleStatus) { vehicles(filter: { status: $s }) { totalCount } }', { s: 'ACTIV' }],
        ['{ vehicles(filter: { status: ACTIV }) { totalCount } }', undefined],
        ['{ vehicles(frist: 1) { totalCount } }', undefined],
        ['{ vehicles(filter: { serch: "x" }) { totalCount } }', undefined],
        ['query($f: VehicleFiltr) { vehicles(filter: $f) { totalCount } }', undefined],
      ];
      for (const [query, variables] of attempts) {
        const response = await post(server, { query, ...(variables ? { variables } : {}) });
        expect(response.body.errors?.length).toBeGreaterThan(0);
        expect({ query, text: response.text }).toEqual({ query, text: expect.not.stringMatching(/Did you mean|ENTERPRISE"|"ACTIVE"|"first"|"search"|"VehicleFilter"/) });
      }
    } finally {
      await server.close();
    }
  });

  it('are shown in development', async () => {
    expect(await misspelledMessage({ NODE_ENV: 'development' })).toMatch(/Did you mean .*"vehicles"\?/);
  });

  it('follow BLOCK_FIELD_SUGGESTIONS when it is set', async () => {
    expect(await misspelledMessage({ NODE_ENV: 'development', BLOCK_FIELD_SUGGESTIONS: 'true' })).not.toMatch(/Did you mean/i);
    expect(await misspelledMessage({ NODE_ENV: 'production', BLOCK_FIELD_SUGGESTIONS: 'false' })).toMatch(/Did you mean .*"vehicles"\?/);
  });
});
