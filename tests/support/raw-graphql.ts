/*
 * GraphQL over plain fetch, for tests that look at what graphql-request hides: the HTTP status,
 * the headers (RateLimit-*, Retry-After), requests without a query (persisted-query hashes),
 * GET requests, batches and bodies that are not GraphQL at all. Each response records how long
 * it took.
 */

export interface RawError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

export interface RawBody {
  data?: Record<string, unknown> | null;
  errors?: RawError[];
}

export interface RawResponse<Body = RawBody> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: Body;
  /** Wall-clock milliseconds from sending to the whole body read. */
  ms: number;
}

export async function send<Body = RawBody>(url: string, init: RequestInit = {}): Promise<RawResponse<Body>> {
  const startedAt = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: parseBody<Body>(text), ms: performance.now() - startedAt };
}

/** A response body parsed as JSON, or undefined when it is not JSON. */
export function parseBody<Body = RawBody>(text: string): Body {
  try {
    return JSON.parse(text) as Body;
  } catch {
    return undefined as Body;
  }
}

/** POST a JSON body (one operation, or an array for a batch). */
export function postJson<Body = RawBody>(url: string, payload: unknown, headers: Record<string, string> = {}): Promise<RawResponse<Body>> {
  return send<Body>(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
}

/** GET with the GraphQL-over-HTTP query parameters (objects are JSON-encoded). */
export function getGraphQL(url: string, params: Record<string, unknown>, headers: Record<string, string> = {}): Promise<RawResponse> {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) search.set(name, typeof value === 'string' ? value : JSON.stringify(value));
  }
  // Apollo's CSRF prevention serves GET only with a header a browser form cannot send.
  return send(`${url}?${search.toString()}`, { method: 'GET', headers: { 'apollo-require-preflight': 'true', ...headers } });
}

/** The distinct error codes of a response, in order of appearance. */
export function codesOf(response: RawResponse): string[] {
  return [...new Set((response.body?.errors ?? []).map((error) => String(error.extensions?.code)))];
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Calls `probe` every `intervalMs` until it returns a value, for at most `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** SQL statements every tenant connection of the server at `graphqlUrl` has sent so far (its /metrics counter). */
export async function tenantSqlStatements(graphqlUrl: string): Promise<number> {
  const response = await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics'));
  const line = (await response.text()).split('\n').find((row) => row.startsWith('fleet_tenant_sql_statements_total '));
  if (response.status !== 200 || !line) throw new Error('fleet_tenant_sql_statements_total missing from /metrics');
  return Number(line.split(' ')[1]);
}
