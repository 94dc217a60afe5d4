import { requestIdOf } from './request-id';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Authenticator } from '../auth/authenticator';
import { isTenantPrincipal, principalKey, type Principal, type TenantPrincipal } from '../auth/principal';
import { AppError, ErrorCode } from '../errors/app-error';
import { stripIgnoredCharacters } from 'graphql';
import { LRUCache } from 'lru-cache';
import { assertDocumentShape, type DocumentShapeLimits } from '../graphql/document-shape';
import { assertSaneInput } from '../graphql/hardening';
import type { OperationSafelist } from '../persisted-queries/operation-safelist';
import { rateLimitSubjectOf, type RateLimitSubject, type RequestRateLimiter } from '../rate-limiting/request-rate-limiter';
import type { OverloadMonitor } from '../observability/overload-monitor';
import type { KnownCosts } from '../rate-limiting/known-costs';
import type { TenantInFlight } from '../rate-limiting/tenant-in-flight';
import { IDEMPOTENCY_KEY_HEADER, idempotencyKeyOf } from '../idempotency/idempotency-key';
import { answerRateLimit, hold, overloaded, refusalHoldMs } from './rate-limit-answer';
import { sendRequestError } from './send-request-error';
import { annotateRequestSpans, SPAN_ATTRIBUTES } from '../observability/tracing';

/*
 * Everything that happens to a GraphQL request before Apollo parses it, in order:
 *   1. request id
 *   2. authentication (JWT or API key) -> res.locals.principal; a credential that fails spends
 *      its client address's budget
 *   3. rate limits, a point per operation and KB of text (one Redis round trip): the tenant's
 *      and the caller's buckets, or a signed-out request's client address -> RateLimit-*
 *      headers, 429; the rest of an operation's cost is charged once it is priced
 *      (src/graphql/hardening.ts), unless the same operation was priced before: then its whole
 *      cost is charged here (KnownCosts), and pricing finds nothing left to charge
 *   4. while the server is overloaded, signed-out requests are shed (503 OVERLOADED)
 *   5. batch size; a malformed Idempotency-Key, or one on a batch; the nesting depth and well-formed Unicode of each operation's text, name,
 *      variables and extensions; each document's shape on its token stream (tokens,
 *      directives, selections, fragments, repeated fields: src/graphql/document-shape.ts),
 *      then its text normalised
 *   6. persisted operations: a persistedOnly key may only name registered operations; a
 *      registered operation's text is filled in from the safelist
 *   7. a turn among the tenant's operations in flight (TENANT_MAX_IN_FLIGHT), held until the
 *      answer is out
 * A refusal here costs no parsing; it is answered in the same shape as a GraphQL error.
 */

/** The client's address (behind TRUST_PROXY, as the proxy says): what per-address budgets count. */
export const clientIpOf = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

export interface GuardedLocals {
  requestId: string;
  principal: Principal;
  /** Points each operation spent in the guard, before it was priced (see admissionPoints and KnownCosts). */
  prepaidPoints: number;
  /** The operation as sent, as KnownCosts keys it (a single operation only). */
  costKey: string | undefined;
}

/**
 * What an operation spends before anything looks inside it: a point, and one more for each KB of
 * its text past the first, since reading, scanning and parsing are paid by size. A login is one
 * point; a 7.5 KB document built to be expensive to refuse is eight.
 */
export function admissionPoints(operation: { query?: unknown }): number {
  return typeof operation.query === 'string' ? Math.max(1, Math.ceil(operation.query.length / 1024)) : 1;
}

interface GraphQLRequestFields {
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  extensions?: unknown;
}

function persistedHash(extensions: unknown): string | undefined {
  if (typeof extensions === 'string') {
    try {
      return persistedHash(JSON.parse(extensions));
    } catch {
      return undefined;
    }
  }
  const hash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
  return typeof hash === 'string' ? hash : undefined;
}

/** A URL's query string; never throws, unlike `new URL` on a path such as `//`. */
function searchParamsOf(url: string): URLSearchParams {
  const start = url.indexOf('?');
  return new URLSearchParams(start === -1 ? '' : url.slice(start + 1));
}

const isRequestObject = (value: unknown): value is GraphQLRequestFields =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON query parameter as Apollo will read it; text that is not JSON stays text, for Apollo to refuse. */
function jsonParam(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The operations of a request: the JSON body (one, or an array when batched), or GET's query string. */
function operationsOf(req: Request): GraphQLRequestFields[] {
  if (req.method === 'GET') {
    const search = searchParamsOf(req.originalUrl);
    return [
      {
        query: search.get('query') ?? undefined,
        operationName: search.get('operationName') ?? undefined,
        variables: jsonParam(search.get('variables')),
        extensions: jsonParam(search.get('extensions')),
      },
    ];
  }
  const body: unknown = req.body;
  if (Array.isArray(body)) {
    const bad = body.findIndex((entry) => !isRequestObject(entry));
    if (bad !== -1) {
      throw new AppError(ErrorCode.BAD_REQUEST, `Entry ${bad} of the batch is not a GraphQL request object`, { httpStatus: 400 });
    }
    return body as GraphQLRequestFields[];
  }
  return isRequestObject(body) ? [body] : [];
}

/**
 * A GET's URL with `document` as its query text, for Apollo (which reads GET requests from the
 * query string). `dropPersistedHash`: the document is a registered operation, which Apollo then
 * runs as a plain query: this request only, nothing written to the caller's APQ cache.
 */
function withQueryText(url: string, document: string, dropPersistedHash: boolean): string {
  const start = url.indexOf('?');
  const path = start === -1 ? url : url.slice(0, start);
  const search = searchParamsOf(url);
  search.set('query', document);
  if (dropPersistedHash) {
    let extensions: unknown;
    try {
      extensions = JSON.parse(search.get('extensions') ?? 'null');
    } catch {
      extensions = null;
    }
    const { persistedQuery: _resolved, ...otherExtensions } = isRequestObject(extensions) ? (extensions as Record<string, unknown>) : {};
    if (Object.keys(otherExtensions).length > 0) search.set('extensions', JSON.stringify(otherExtensions));
    else search.delete('extensions');
  }
  return `${path}?${search.toString()}`;
}

/**
 * A document's text without comments and insignificant whitespace, so that variants of one
 * document are one entry of Apollo's parse-and-validate cache (keyed by the text's hash), not a
 * new one each: a changing comment made every request of a flood a fresh validation. Not for
 * automatic persisted queries sent with their hash, which must hash to what the client sent.
 * Error locations then refer to the normalised text.
 */
function normalise(req: Request, operation: GraphQLRequestFields, stripped: string): void {
  if (typeof operation.query !== 'string' || stripped === operation.query || persistedHash(operation.extensions)) return;
  operation.query = stripped;
  if (req.method === 'GET') req.url = withQueryText(req.url, stripped, false);
}

/** The text without what the lexer ignores, or as sent when it does not lex (the parser then says where). */
function strippedText(query: string): string {
  try {
    return stripIgnoredCharacters(query);
  } catch {
    return query;
  }
}

/** Documents longer than this are checked afresh each time rather than kept. */
const MAX_REMEMBERED_DOCUMENT = 8_192;

export function graphqlRequestGuard(deps: {
  authenticator: Authenticator;
  rateLimiter: RequestRateLimiter | null;
  tenantInFlight: TenantInFlight;
  overload: OverloadMonitor;
  /** RATE_LIMIT_REFUSAL_DELAY_MS: how long a rate-limit refusal is held at most (rate-limit-answer.ts). */
  refusalHoldMaxMs: number;
  safelist: OperationSafelist;
  maxBatchSize: number;
  documentLimits: DocumentShapeLimits;
  knownCosts: KnownCosts;
  /** Records a request refused here (it never reaches Apollo, whose plugin records the rest). */
  recordRefusal: (requestId: string, principal: Principal | undefined, error: AppError) => void;
  /** OTEL_TENANT_ATTRIBUTE: the request's spans carry the tenant id (off: traces may leave the installation). */
  tenantSpanAttribute: boolean;
}): RequestHandler {
  /**
   * Documents that passed the checks below, as sent, with their stripped text: clients send the
   * same few documents all day, and lexing each twice (shape, then stripping) was a visible
   * share of a request's CPU. The checks depend on the text and the configuration only.
   */
  const checkedDocuments = new LRUCache<string, string>({ max: 1_000 });

  /** Spends `points` from the subject's budgets; throws the refusal (headers set either way). */
  async function spend(res: Response, subject: RateLimitSubject | null, points: number): Promise<void> {
    if (!deps.rateLimiter || !subject) return;
    answerRateLimit(await deps.rateLimiter.take(subject, points), (name, value) => res.setHeader(name, value), subject);
  }

  async function resolvePersisted(req: Request, principal: TenantPrincipal, operation: GraphQLRequestFields): Promise<void> {
    const hash = persistedHash(operation.extensions);
    const hasText = typeof operation.query === 'string' && operation.query.length > 0;
    if (principal.kind === 'apiKey' && principal.persistedOnly) {
      if (hasText || !hash) {
        throw new AppError(
          ErrorCode.PERSISTED_QUERY_REQUIRED,
          'This API key may only run registered operations: send extensions.persistedQuery.sha256Hash without a query',
          { httpStatus: 403 },
        );
      }
    }
    if (!hash || hasText) return;
    const document = await deps.safelist.lookup(principal.tenant.id, hash);
    if (document) {
      // Apollo runs the document as a plain query, for this request only: with the hash still
      // attached it would hash the text again and write it to the shared APQ cache, where
      // callers of other tenants (or none) could run it by hash.
      operation.query = document;
      if (req.method === 'GET') {
        req.url = withQueryText(req.url, document, true);
      } else if (operation.extensions && typeof operation.extensions === 'object') {
        const { persistedQuery: _resolved, ...otherExtensions } = operation.extensions as Record<string, unknown>;
        operation.extensions = otherExtensions;
      }
    } else if (principal.kind === 'apiKey' && principal.persistedOnly) {
      throw new AppError(ErrorCode.PERSISTED_QUERY_NOT_REGISTERED, 'No operation with this hash is registered for your tenant', {
        httpStatus: 404,
      });
    }
  }

  return async (req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdOf(req);
    res.setHeader('x-request-id', requestId);
    res.locals.requestId = requestId;
    annotateRequestSpans({ [SPAN_ATTRIBUTES.requestId]: requestId });
    try {
      const clientIp = clientIpOf(req);
      let principal: Principal;
      try {
        principal = await deps.authenticator.authenticate(req.headers);
      } catch (error) {
        // A credential that does not hold (unknown, expired, for another tenant than the request
        // names, of a suspended tenant) is a signed-out request: it spends its address's budget,
        // so guessing keys or replaying dead tokens is no cheaper than anything else.
        if (error instanceof AppError) await spend(res, { kind: 'address', clientIp }, 1);
        throw error;
      }
      res.locals.principal = principal;
      if (deps.tenantSpanAttribute && isTenantPrincipal(principal)) annotateRequestSpans({ [SPAN_ATTRIBUTES.tenantId]: principal.tenant.id });
      const operations = operationsOf(req);
      // Spent before any look inside, so a refused document costs its sender as much as any other;
      // an operation priced before is charged its whole cost now, in this one round trip.
      const single = !Array.isArray(req.body) && operations.length === 1 ? (operations[0] as GraphQLRequestFields) : undefined;
      const sentBytes = req.method === 'GET' ? req.originalUrl.length : Number(req.headers['content-length'] ?? Infinity);
      // Signed-in tenant callers only: others have no budget, or one per address.
      const costKey = single && isTenantPrincipal(principal) ? deps.knownCosts.keyOf(`${principal.tenant.id}:${principalKey(principal)}`, single, sentBytes) : undefined;
      const admission = Math.max(1, operations.reduce((sum, operation) => sum + admissionPoints(operation), 0));
      const points = Math.max(admission, deps.knownCosts.get(costKey) ?? 0);
      res.locals.costKey = costKey;
      res.locals.prepaidPoints = points / Math.max(1, operations.length);
      await spend(res, rateLimitSubjectOf(principal, clientIp), points);
      if (principal.kind === 'anonymous' && deps.overload.overloaded) {
        // Signed-out work goes first when the server cannot keep up: tenants' requests keep the room.
        deps.overload.recordShed('signed-out');
        throw overloaded('The server is overloaded and serves signed-in requests first; retry shortly');
      }
      if (Array.isArray(req.body) && req.body.length > deps.maxBatchSize) {
        throw new AppError(
          ErrorCode.BATCH_TOO_LARGE,
          deps.maxBatchSize <= 1
            ? 'Batched requests are turned off; send one operation per request'
            : `At most ${deps.maxBatchSize} operations per batch`,
          { httpStatus: 400 },
        );
      }
      // Its form only; src/idempotency/idempotency-plugin.ts claims it once the operation is known.
      if (idempotencyKeyOf(req.headers[IDEMPOTENCY_KEY_HEADER]) !== undefined && Array.isArray(req.body)) {
        throw new AppError(ErrorCode.BAD_REQUEST, 'An Idempotency-Key names one operation: send it without batching', { httpStatus: 400 });
      }
      for (const operation of operations) {
        // Apollo refuses a query or operationName that is not a string without looking inside.
        if (typeof operation.operationName === 'string') assertSaneInput(operation.operationName, 'operationName');
        assertSaneInput(operation.variables, 'variables');
        assertSaneInput(operation.extensions, 'extensions');
        if (typeof operation.query === 'string') {
          let stripped = checkedDocuments.get(operation.query);
          if (stripped === undefined) {
            assertSaneInput(operation.query, 'query');
            assertDocumentShape(operation.query, deps.documentLimits);
            stripped = strippedText(operation.query);
            if (operation.query.length <= MAX_REMEMBERED_DOCUMENT) checkedDocuments.set(operation.query, stripped);
          }
          normalise(req, operation, stripped);
        }
      }
      if (isTenantPrincipal(principal)) {
        for (const operation of operations) await resolvePersisted(req, principal, operation);
        // Its turn among the tenant's own operations in flight, given back once the answer is out,
        // or at once if the client left while it waited (it would otherwise be held for good).
        const turn: { release?: () => void; clientGone?: boolean } = {};
        res.once('close', () => {
          turn.clientGone = true;
          turn.release?.();
        });
        turn.release = await deps.tenantInFlight.acquire(principal.tenant.id, principal.tenant.slug);
        if (turn.clientGone) {
          turn.release();
          return;
        }
      }
      next();
    } catch (error) {
      if (!(error instanceof AppError)) {
        next(error);
        return;
      }
      deps.recordRefusal(requestId, (res.locals as Partial<GuardedLocals>).principal, error);
      await hold(refusalHoldMs(error, deps.refusalHoldMaxMs));
      sendRequestError(req, res, error);
    }
  };
}
