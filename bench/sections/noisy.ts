import { parse, type GraphQLSchema } from 'graphql';
import { directiveEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { buildSchema } from '../../src/graphql/schema';
import { startBenchServer, type BenchServer } from '../lib/bench-server';
import { forgetAllClients, type BenchContext, type Row, type SectionReport } from '../lib/context';
import { BenchFleet, createVehiclesWithDrivers } from '../lib/fleet';
import { graphql } from '../lib/graphql-http';
import {
  cpuSecondsOfThisProcess,
  runPaced,
  startNoise,
  type LoadConfig,
  type NoiseConfig,
  type NoiseCounters,
  type PacedResult,
} from '../lib/processes';
import { ms, ratio, sleep } from '../lib/stats';

/*
 * 8. Noisy neighbours: tenant B's latency at a moderate, fixed request rate, alone and while
 * someone else misbehaves at full speed: tenant A sending the costliest document the server
 * accepts, a signed-out client flooding documents that are expensive to validate, and a flood of
 * failed logins. B's load (bench/paced.js) and the noise (bench/noise.js) are processes of their
 * own; B is measured only once the noise has had its head start. The target is B's p99 within
 * 2× its p99 alone and no request of B refused: printed as a figure, never a failure.
 *
 * A server instance of its own (in this process) with TRUST_PROXY=loopback, so that the
 * signed-out noise can come "from" many addresses through X-Forwarded-For, as it would from the
 * internet behind a load balancer; its own tenants noisy-a and noisy-b.
 */

/** Tenant B's load: moderate, far from what two cores serve (see the request section). */
const B_RATE_PER_SECOND = 50;
const B_CONNECTIONS = 4;
const B_QUERY = '{ vehicles(first: 20) { edges { node { id plate driver { name } } } } }';
const B_VEHICLES = 20;
/** Enough rows for `vehicles(first: 100)` to return full pages. */
const A_VEHICLES = 120;
/** A's callers: its owner and this many API keys, so that A's tenant bucket, not one caller's, is what binds. */
const A_API_KEYS = 3;
const A_CONNECTIONS = 24;
const FLOOD_CONNECTIONS = 16;
/** "Several addresses": a small botnet, or one client cycling a few proxies. */
const FLOOD_ADDRESSES = 8;
/** More than the password hashing queue holds (PASSWORD_HASH_QUEUE_MAX, 32 by default): full speed means overflowing it. */
const LOGIN_CONNECTIONS = 64;
/** Each request from an address of its own: every login within the per-address limits. */
const LOGIN_ADDRESSES = 65_535;
/** The team's target: B's p99 at most this multiple of its p99 alone, and nothing of B refused. */
const TARGET_P99_RATIO = 2;
/** The noise generator's niceness (see NoiseConfig.niceness). */
const NOISE_NICENESS = 10;
/** A request of B still unanswered after this long counts as failed (and as slower than any answer). */
const B_TIMEOUT_SEC = 10;
/** Ceiling for how long the server may take to go quiet after a scenario's noise stops. */
const SETTLE_MAX_MS = 20_000;

type LoadRequest = LoadConfig['requests'][number];

interface Tenant {
  id: string;
  slug: string;
  token: string;
}

interface NoiseScenario {
  key: string;
  /** The table's row label for B. */
  label: string;
  /** The table's row label for the noise itself. */
  noiseLabel: string;
  config: NoiseConfig;
  /** What one noise request costs on its own, measured once before the flood (for the detail column). */
  probe: string;
}

interface ScenarioResult {
  b: PacedResult;
  noise?: {
    /** Counters between the marks around B's window. */
    window: NoiseCounters;
    windowSec: number;
    /** CPU seconds per second of the window: the server's process, and the noise generator's. */
    serverCores: number;
    noiseCores: number;
  };
}

// ---------------------------------------------------------------------------------------------
// Query cost, computed like src/graphql/hardening.ts does (the SDL's @cost, lists times `first`)

function costOf(schema: GraphQLSchema, document: string): number {
  return getComplexity({
    schema,
    query: parse(document),
    variables: {},
    estimators: [directiveEstimator({ name: 'cost' }), simpleEstimator({ defaultComplexity: 1 })],
  });
}

/**
 * A vehicle's selection with `levels` nested objects under it, alternating driver and vehicle
 * (each driver drives that vehicle: every level resolves a real row), with two fields each.
 */
function chainFrom(type: 'Vehicle' | 'Driver', levels: number): string {
  const fields = type === 'Vehicle' ? 'id plate' : 'id name';
  if (levels === 0) return fields;
  const next = type === 'Vehicle' ? 'driver' : 'vehicle';
  return `${fields} ${next} { ${chainFrom(type === 'Vehicle' ? 'Driver' : 'Vehicle', levels - 1)} }`;
}

interface CostlyDocument {
  document: string;
  cost: number;
  aliases: number;
  levels: number;
  /** `first` of each alias. */
  pages: number[];
}

/**
 * Tenant A's noise: as many `vehicles(first: 100)` aliases with the deepest chain as fit in
 * `budget`, and one more alias whose `first` takes what is left; at most `maxAliases` aliases.
 */
function costlyDocument(schema: GraphQLSchema, budget: number, levels: number, maxAliases: number): CostlyDocument | null {
  const selection = `edges { node { ${chainFrom('Vehicle', levels)} } }`;
  const alias = (index: number, first: number) => `a${index}: vehicles(first: ${first}) { ${selection} }`;
  const perRow = costOf(schema, `{ ${alias(0, 1)} }`);
  const pages: number[] = [];
  let left = budget;
  while (pages.length < maxAliases && left >= perRow) {
    const first = Math.min(100, Math.floor(left / perRow));
    pages.push(first);
    left -= costOf(schema, `{ ${alias(0, first)} }`);
  }
  if (pages.length === 0) return null;
  const document = `query Costliest { ${pages.map((first, index) => alias(index, first)).join(' ')} }`;
  return { document, cost: costOf(schema, document), aliases: pages.length, levels, pages };
}

// ---------------------------------------------------------------------------------------------
// Tenants

async function createTenant(ctx: BenchContext, app: BenchServer, slug: string, vehicles: number): Promise<Tenant> {
  const owner = BenchFleet.ownerFor(slug);
  const record = await app.server.services.provisioner.createTenant({ slug, name: `Noisy ${slug}`, plan: 'STANDARD', owner });
  // Part of the fleet from now on, as the provision section's tenants are: migrate's whole-fleet
  // check counts every tenant of the database. (Never loaded as a hot tenant: noisy runs after
  // the sections that load some, see RUN_ORDER.)
  ctx.fleet.adopt(record, owner.email);
  // In-process, as the fleet does: HTTP login allows 20 a minute per address.
  const login = await app.server.services.sessions.login({ tenant: slug, email: owner.email, password: owner.password });
  await createVehiclesWithDrivers(app.url, login.accessToken, slug, vehicles);
  ctx.progress(`  ${slug}: ${vehicles} vehicles with drivers`);
  return { id: record.id, slug, token: login.accessToken };
}

async function setRateLimit(ctx: BenchContext, app: BenchServer, tenant: Tenant, refillPerSecond: number, capacity: number): Promise<void> {
  const bucket = { capacity, refillPerSecond };
  await graphql(
    app.url,
    'mutation Limit($id: ID!, $limit: TenantRateLimitInput) { setTenantRateLimit(id: $id, limit: $limit) { tenant { id } } }',
    { id: tenant.id, limit: { tenant: bucket, perCaller: bucket } },
    ctx.fleet.adminToken,
  );
}

async function apiKeys(app: BenchServer, tenant: Tenant, count: number): Promise<string[]> {
  const secrets: string[] = [];
  for (let index = 1; index <= count; index += 1) {
    const created = await graphql<{ createApiKey: { secret: string } }>(
      app.url,
      'mutation Key($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }',
      { input: { name: `noisy caller ${index}`, role: 'VIEWER' } },
      tenant.token,
    );
    secrets.push(created.createApiKey.secret);
  }
  return secrets;
}

// ---------------------------------------------------------------------------------------------
// Probes: one request of each kind, alone, before any load

interface ProbeAnswer {
  status: number;
  ms: number;
  bytes: number;
  body: { data?: unknown; errors?: { message: string; extensions?: { code?: string; cost?: number } }[] };
}

async function probe(url: string, request: LoadRequest): Promise<ProbeAnswer> {
  const startedAt = performance.now();
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...request.headers }, body: request.body });
  const text = await response.text();
  const elapsed = performance.now() - startedAt;
  let body: ProbeAnswer['body'];
  try {
    body = JSON.parse(text) as ProbeAnswer['body'];
  } catch {
    body = { errors: [{ message: text.slice(0, 200), extensions: { code: 'NOT_JSON' } }] };
  }
  return { status: response.status, ms: elapsed, bytes: Buffer.byteLength(text), body };
}

const firstCode = (answer: ProbeAnswer) => answer.body.errors?.[0]?.extensions?.code;
const outcomeOf = (answer: ProbeAnswer) => `${answer.status} ${firstCode(answer) ?? 'ok'}`;
/** The outcome with the first error's message, shortened: what a refusal said. */
const outcomeWithMessage = (answer: ProbeAnswer) => {
  const message = answer.body.errors?.[0]?.message;
  return message ? `${outcomeOf(answer)} "${message.length > 60 ? `${message.slice(0, 57)}...` : message}"` : outcomeOf(answer);
};

/** The costliest document the server accepts for A: built within MAX_COST, depth, aliases and tokens, shrunk until accepted. */
async function acceptedCostlyDocument(
  ctx: BenchContext,
  app: BenchServer,
  schema: GraphQLSchema,
  token: string,
): Promise<{ built: CostlyDocument; answer: ProbeAnswer; rows: number }> {
  const { limits } = app.config;
  let budget = limits.maxCost;
  // vehicles > edges > node > the node's fields: nested objects may take the remaining depth.
  let levels = limits.maxDepth - 4;
  for (let attempt = 1; attempt <= 12; attempt += 1) {
    const built = costlyDocument(schema, budget, levels, limits.maxAliases);
    if (!built) break;
    const request = { headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ query: built.document }) };
    await probe(app.url, request); // the first one parses, validates and prices it; time the second
    const answer = await probe(app.url, request);
    const code = firstCode(answer);
    ctx.progress(`  A's document: ${built.aliases} aliases, ${built.levels} nested levels, cost ${built.cost}: ${outcomeOf(answer)} in ${ms(answer.ms)}`);
    if (!code && answer.status === 200) {
      const data = answer.body.data as Record<string, { edges: { node: { driver: unknown } }[] }>;
      const rows = Object.values(data).reduce((sum, page) => sum + page.edges.length, 0);
      const expected = built.pages.reduce((sum, first) => sum + Math.min(first, A_VEHICLES), 0);
      if (rows !== expected) throw new Error(`A's costly document returned ${rows} rows, expected ${expected}`);
      return { built, answer, rows };
    }
    if (code === 'QUERY_TOO_COMPLEX') {
      // The server priced it higher than this bench does: shrink by the difference.
      const priced = answer.body.errors?.[0]?.extensions?.cost ?? Math.ceil(budget * 1.1);
      budget -= Math.max(1, priced - limits.maxCost) + Math.ceil(budget * 0.01);
    } else if (code === 'QUERY_TOO_DEEP' || code === 'TOO_MANY_TOKENS') {
      levels -= 1;
    } else if (code === 'TOO_MANY_ALIASES') {
      budget = Math.floor(budget * 0.9);
    } else {
      throw new Error(`A's costly document was refused: ${outcomeOf(answer)} ${answer.body.errors?.[0]?.message ?? ''}`);
    }
  }
  throw new Error('found no costly document the server accepts');
}

/** The signed-out flood's document: one field repeated up to the token limit, a new comment every time. */
function floodBody(repeats: number, counter: string): string {
  return JSON.stringify({ query: `#${counter}\n{ ${'me { id } '.repeat(repeats)}}` });
}

// ---------------------------------------------------------------------------------------------
// Measuring

function bConfig(app: BenchServer, b: Tenant, warmupSec: number, durationSec: number) {
  return {
    url: app.url,
    ratePerSecond: B_RATE_PER_SECOND,
    connections: B_CONNECTIONS,
    warmupSec,
    durationSec,
    timeoutSec: B_TIMEOUT_SEC,
    requests: [{ headers: { authorization: `Bearer ${b.token}` }, body: JSON.stringify({ query: B_QUERY }) }],
    expect: '"plate"',
  };
}

/** Waits until the server's process uses less than a fifth of a core (the noise's backlog is done). */
async function settle(ctx: BenchContext): Promise<void> {
  const startedAt = performance.now();
  for (;;) {
    const before = cpuSecondsOfThisProcess();
    await sleep(500);
    const busy = (cpuSecondsOfThisProcess() - before) / 0.5;
    if (busy < 0.2) return;
    if (performance.now() - startedAt > SETTLE_MAX_MS) {
      ctx.progress(`  the server is still busy (${busy.toFixed(2)} cores) ${SETTLE_MAX_MS / 1000} s after the noise stopped; going on`);
      return;
    }
  }
}

async function measureWithNoise(ctx: BenchContext, app: BenchServer, b: Tenant, scenario: NoiseScenario): Promise<ScenarioResult> {
  const { noisyWarmupSec, noisyWindowSec } = ctx.counts;
  ctx.progress(`${scenario.key}: noise for ${noisyWarmupSec} s, then B for ${noisyWindowSec} s`);
  const noise = startNoise(scenario.config);
  try {
    await sleep(noisyWarmupSec * 1000);
    const warm = await noise.mark('warm');
    if (warm.counters.answered === 0 && warm.counters.errors === 0) ctx.progress(`  ${scenario.key}: no noise answered yet after ${noisyWarmupSec} s`);
    const start = await noise.mark('start');
    const serverCpu = cpuSecondsOfThisProcess();
    const noiseCpu = noise.cpuSeconds();
    // One second of B's own warm-up: its sockets are open when the window starts.
    const result = await runPaced(bConfig(app, b, 1, noisyWindowSec));
    const end = await noise.mark('stop');
    const windowSec = (end.atMs - start.atMs) / 1000;
    const window = difference(end.counters, start.counters);
    const noiseResult = {
      window,
      windowSec,
      serverCores: (cpuSecondsOfThisProcess() - serverCpu) / windowSec,
      noiseCores: (noise.cpuSeconds() - noiseCpu) / windowSec,
    };
    ctx.progress(`  B: ${describeB(result)}; noise ${Math.round(window.answered / windowSec)}/s ${describeOutcomes(window)}`);
    return { b: result, noise: noiseResult };
  } finally {
    await noise.stop();
    await settle(ctx);
  }
}

function difference(later: NoiseCounters, earlier: NoiseCounters): NoiseCounters {
  const outcomes: Record<string, number> = {};
  for (const [outcome, count] of Object.entries(later.outcomes)) {
    const delta = count - (earlier.outcomes[outcome] ?? 0);
    if (delta > 0) outcomes[outcome] = delta;
  }
  return { answered: later.answered - earlier.answered, outcomes, errors: later.errors - earlier.errors, timeouts: later.timeouts - earlier.timeouts };
}

// ---------------------------------------------------------------------------------------------
// Report

const count = (value: number) => value.toLocaleString('en-US');

/** "200 ok 1,234 · 429 RATE_LIMITED 56", largest first, and connection errors. */
function describeOutcomes(counters: NoiseCounters): string {
  const parts = Object.entries(counters.outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([outcome, value]) => `${outcome} ${count(value)}`);
  const failures = counters.errors - counters.timeouts;
  if (failures > 0) parts.push(`connection errors ${count(failures)}`);
  if (counters.timeouts > 0) parts.push(`timeouts ${count(counters.timeouts)}`);
  return parts.length ? parts.join(' · ') : 'nothing answered';
}

/** 2xx / 4xx / 5xx / 429 totals, as the brief for this section asks. */
function statusClasses(counters: NoiseCounters): string {
  const classes = { '2xx': 0, '429': 0, 'other 4xx': 0, '5xx': 0 };
  for (const [outcome, value] of Object.entries(counters.outcomes)) {
    const status = Number(outcome.split(' ')[0]);
    if (status === 429) classes['429'] += value;
    else if (status >= 500) classes['5xx'] += value;
    else if (status >= 400) classes['other 4xx'] += value;
    else classes['2xx'] += value;
  }
  return Object.entries(classes)
    .map(([name, value]) => `${name} ${count(value)}`)
    .join(', ');
}

/** B's requests that were refused or failed: not 2xx, an error in the body, no answer (timeouts are among the errors). */
function refusedOf(result: PacedResult): number {
  return result.non2xx + result.errors + result.mismatches;
}

/**
 * B's latency percentile p, in ms; Infinity when more than (100 − p) % of the requests due went
 * unanswered within B_TIMEOUT_SEC (they were slower than any answer). Answers count only when
 * 2xx, as in the other sections: a quick refusal must not make B look fast.
 */
function latency(result: PacedResult, p: 50 | 99): number {
  if (result.timeouts > result.due * (1 - p / 100)) return Number.POSITIVE_INFINITY;
  return result.latencyMs[p === 50 ? 'p50' : 'p99'];
}

const latencyText = (value: number) => (value === Number.POSITIVE_INFINITY ? `> ${B_TIMEOUT_SEC} s (unanswered)` : ms(value));

function describeB(result: PacedResult): string {
  const refused = refusedOf(result);
  const answers = [
    ...Object.entries(result.statusCodes).map(([status, { count: value }]) => `${status}×${value}`),
    ...Object.entries(result.codes).map(([code, value]) => `${code}×${value}`),
    ...(result.errors - result.timeouts > 0 ? [`connection errors ×${result.errors - result.timeouts}`] : []),
    ...(result.timeouts > 0 ? [`no answer within ${B_TIMEOUT_SEC} s ×${result.timeouts}`] : []),
  ];
  return (
    `p50 ${latencyText(latency(result, 50))} · p99 ${latencyText(latency(result, 99))} · max ${ms(result.latencyMs.max)} · ` +
    `${result.rps.toFixed(1)} of ${B_RATE_PER_SECOND} req/s answered · refused/failed ${refused} of ${result.due}` +
    (refused > 0 ? ` (${answers.join(', ')})` : '')
  );
}


export async function noisySection(ctx: BenchContext): Promise<SectionReport> {
  const { counts } = ctx;
  const notes: string[] = [];
  const schema = buildSchema();
  // Honour a TRUST_PROXY given with --set; otherwise trust the loopback proxy that the noise "is".
  const trustProxy = ctx.run.serverEnv.TRUST_PROXY ?? 'loopback';
  await forgetAllClients(ctx); // the main instance gives its tenant connections back
  const app = await startBenchServer(ctx.run, 'noisy-server', {
    env: {
      TRUST_PROXY: trustProxy,
      // Empty is unset: production's budget of password checks (the bench's other servers lift it for loading).
      PASSWORD_CHECKS_PER_SECOND: '',
      PASSWORD_CHECKS_BURST: '',
      ...ctx.run.serverEnv,
    },
  });
  try {
    ctx.progress('creating tenants noisy-a and noisy-b');
    const a = await createTenant(ctx, app, 'noisy-a', A_VEHICLES);
    const b = await createTenant(ctx, app, 'noisy-b', B_VEHICLES);
    // B's own budget must never be what refuses it: twice its rate, even if every request were
    // charged its whole query cost rather than one token.
    const bCost = costOf(schema, B_QUERY);
    const bRefill = 2 * B_RATE_PER_SECOND * Math.max(1, bCost);
    await setRateLimit(ctx, app, b, bRefill, bRefill * 10);
    notes.push(
      `noisy: tenant B (noisy-b) has a rate-limit override (setTenantRateLimit): tenant and per-caller buckets of ${count(bRefill * 10)} tokens refilling ${count(bRefill)}/s, ` +
        `twice its ${B_RATE_PER_SECOND} req/s even if each request were charged its query cost (${bCost}); tenant A (noisy-a) keeps the STANDARD plan's limits, and its 429s are part of the figures, not errors.`,
    );
    const keys = await apiKeys(app, a, A_API_KEYS);
    const aCallers: LoadRequest['headers'][] = [{ authorization: `Bearer ${a.token}` }, ...keys.map((secret) => ({ 'x-api-key': secret }))];

    const bProbe = await probe(app.url, bConfig(app, b, 0, 0).requests[0] as LoadRequest);
    if (outcomeOf(bProbe) !== '200 ok') throw new Error(`B's query answered ${outcomeOf(bProbe)}`);
    const costly = await acceptedCostlyDocument(ctx, app, schema, a.token);
    const costlyBody = JSON.stringify({ query: costly.built.document });

    // The signed-out flood: as many repeats as the token limit lets through ({ + 4 per repeat + }).
    let repeats = Math.floor((app.config.limits.maxTokens - 2) / 4);
    let floodProbe = await probe(app.url, { headers: { 'x-forwarded-for': '10.201.0.1' }, body: floodBody(repeats, 'probe-1') });
    while (firstCode(floodProbe) === 'TOO_MANY_TOKENS' && repeats > 10) {
      repeats -= 10;
      floodProbe = await probe(app.url, { headers: { 'x-forwarded-for': '10.201.0.1' }, body: floodBody(repeats, `probe-${repeats}`) });
    }
    floodProbe = await probe(app.url, { headers: { 'x-forwarded-for': '10.201.0.1' }, body: floodBody(repeats, 'probe-timed') });
    const floodBytes = floodBody(repeats, '0').length;

    const loginBody = JSON.stringify({
      query: 'mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }',
      variables: { input: { tenant: a.slug, email: 'nobody-{{n}}@noise.example.com', password: 'wrong-password-{{n}}' } },
    });
    const adminLoginBody = JSON.stringify({
      query: 'mutation AdminLogin($email: String!, $password: String!) { adminLogin(email: $email, password: $password) { accessToken } }',
      variables: { email: 'nobody-{{n}}@noise.example.com', password: 'wrong-password-{{n}}' },
    });
    const loginProbe = await probe(app.url, { headers: { 'x-forwarded-for': '10.202.255.255' }, body: loginBody.replaceAll('{{n}}', 'probe') });

    const common = { url: app.url, timeoutSec: 10, maxDurationSec: counts.noisyWarmupSec + counts.noisyWindowSec + 120, niceness: NOISE_NICENESS };
    const scenarios: NoiseScenario[] = [
      {
        key: 'tenant A, costliest accepted query',
        label: `B while tenant A sends its costliest accepted query at full speed`,
        noiseLabel: `noise: tenant A, ${A_CONNECTIONS} connections, ${aCallers.length} callers (owner + ${A_API_KEYS} API keys), STANDARD limits`,
        config: { ...common, connections: A_CONNECTIONS, requests: aCallers.map((headers) => ({ headers, body: costlyBody })) },
        probe:
          `document: ${costly.built.aliases} aliases of vehicles(first: ${costly.built.pages.join('/')}) with ${costly.built.levels} nested driver/vehicle levels, ` +
          `cost ${costly.built.cost} of ${app.config.limits.maxCost} (accepted), ${costly.rows} rows, ${Math.round(costly.answer.bytes / 1024)} KiB; one alone ${ms(costly.answer.ms)}`,
      },
      {
        key: 'signed-out validation flood',
        label: 'B while a signed-out client floods documents that are costly to validate',
        noiseLabel: `noise: signed out, ${FLOOD_CONNECTIONS} connections from ${FLOOD_ADDRESSES} addresses (X-Forwarded-For)`,
        config: {
          ...common,
          connections: FLOOD_CONNECTIONS,
          requests: [{ headers: { 'x-forwarded-for': '{{ip}}' }, body: floodBody(repeats, '{{n}}') }],
          addresses: { prefix: '10.201', count: FLOOD_ADDRESSES },
        },
        probe: `document: #<counter> then { me { id } × ${repeats} } (${app.config.limits.maxTokens} tokens at most, ${floodBytes} bytes); one alone ${outcomeWithMessage(floodProbe)} in ${ms(floodProbe.ms)}`,
      },
      {
        key: 'login flood',
        label: 'B while failed logins flood in (login and adminLogin, each a bcrypt check)',
        noiseLabel: `noise: signed out, ${LOGIN_CONNECTIONS} connections, a new address (X-Forwarded-For) and email for every attempt`,
        config: {
          ...common,
          connections: LOGIN_CONNECTIONS,
          requests: [
            { headers: { 'x-forwarded-for': '{{ip}}' }, body: loginBody },
            { headers: { 'x-forwarded-for': '{{ip}}' }, body: adminLoginBody },
          ],
          addresses: { prefix: '10.202', count: LOGIN_ADDRESSES },
        },
        probe: `unknown emails, wrong passwords, alternately login (tenant ${a.slug}) and adminLogin; one alone ${outcomeOf(loginProbe)} in ${ms(loginProbe.ms)}; bcrypt cost ${app.config.auth.bcryptRounds}, ${app.config.auth.passwordJobs.threads} hashing thread(s), queue of ${app.config.auth.passwordJobs.queueMax}`,
      },
    ];

    // B's server is warm already (the probes), and B alone needs no noise's head start.
    const aloneWarmupSec = Math.min(2, counts.noisyWarmupSec);
    ctx.progress(`B alone: ${B_RATE_PER_SECOND} req/s over ${B_CONNECTIONS} connections, ${aloneWarmupSec} s warm-up, ${counts.noisyWindowSec} s measured`);
    const before = await runPaced(bConfig(app, b, aloneWarmupSec, counts.noisyWindowSec));
    ctx.progress(`  B alone: ${describeB(before)}`);
    const results: ScenarioResult[] = [];
    for (const scenario of scenarios) results.push(await measureWithNoise(ctx, app, b, scenario));
    ctx.progress('B alone again, after the noise');
    const after = await runPaced(bConfig(app, b, 1, counts.noisyWindowSec));
    ctx.progress(`  B alone again: ${describeB(after)}`);

    // The baseline is the better of B's two runs alone: whatever else slowed the machine down
    // during one of them must not make the noise look harmless.
    const baselineP99 = Math.min(latency(before, 99), latency(after, 99));
    const target = `target p99 ≤ ${TARGET_P99_RATIO}× alone and nothing refused`;
    const rows: Row[] = [
      { measurement: 'B alone, before the noise', result: `p99 ${latencyText(latency(before, 99))}`, detail: describeB(before) },
      {
        measurement: 'B alone, after the noise',
        result: `p99 ${latencyText(latency(after, 99))}`,
        detail: `${describeB(after)} · the ratios below divide by the lower p99 of the two runs alone, ${latencyText(baselineP99)}`,
      },
    ];
    const met: string[] = [];
    for (const [index, scenario] of scenarios.entries()) {
      const { b: result, noise } = results[index] as ScenarioResult;
      const p99 = latency(result, 99);
      // Unanswered: at least the timeout, so the ratio is a lower bound.
      const p99Ratio = p99 === Number.POSITIVE_INFINITY ? `> ${Math.floor((B_TIMEOUT_SEC * 1000) / baselineP99)}×` : ratio(p99 / baselineP99);
      const meets = p99 <= TARGET_P99_RATIO * baselineP99 && refusedOf(result) === 0;
      if (meets) met.push(scenario.key);
      rows.push({
        measurement: scenario.label,
        result: `p99 ${latencyText(p99)} (${p99Ratio} alone)`,
        detail: `${describeB(result)} · ${target}: ${meets ? 'met' : '**not met**'}`,
      });
      if (noise) {
        rows.push({
          measurement: `↳ ${scenario.noiseLabel}`,
          result: `${count(Math.round(noise.window.answered / noise.windowSec))} answers/s`,
          detail:
            `while B ran (${noise.windowSec.toFixed(1)} s): ${statusClasses(noise.window)}; ${describeOutcomes(noise.window)} · ` +
            `server process ${noise.serverCores.toFixed(2)} cores, noise generator ${noise.noiseCores.toFixed(2)} · ${scenario.probe}`,
        });
      }
    }
    rows.push({
      measurement: `Scenarios meeting the target (B's p99 ≤ ${TARGET_P99_RATIO}× alone, none of B's requests refused)`,
      result: `${met.length} of ${scenarios.length}`,
      detail: met.length ? `met: ${met.join(', ')}` : 'none',
    });
    const [lower, higher] = [latency(before, 99), latency(after, 99)].sort((x, y) => x - y) as [number, number];
    if (higher > TARGET_P99_RATIO * lower) {
      notes.push(
        `noisy: B's p99 alone was ${latencyText(latency(before, 99))} before the noise and ${latencyText(latency(after, 99))} after: the machine was busy with something else, or the server had not recovered; the ratios are less reliable.`,
      );
    }
    if (refusedOf(before) + refusedOf(after) > 0) {
      notes.push(`noisy: ${refusedOf(before) + refusedOf(after)} of B's requests failed even alone: the ratios are not meaningful.`);
    }
    return {
      title:
        `Noisy neighbours — tenant B at ${B_RATE_PER_SECOND} req/s (paced, ${B_CONNECTIONS} connections, latency from when each request was due), ` +
        `${counts.noisyWindowSec} s windows after ${counts.noisyWarmupSec} s of noise; server with TRUST_PROXY=${trustProxy}`,
      rows,
      notes,
    };
  } finally {
    await app.close();
  }
}
