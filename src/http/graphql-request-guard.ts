import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import type { Authenticator } from '../auth/authenticator';
import { isTenantPrincipal, type Principal, type TenantPrincipal } from '../auth/principal';
import { AppError, ErrorCode, errorResponseBody, httpStatusOf } from '../errors/app-error';
import { assertTokenLimit } from '../graphql/hardening';
import type { OperationSafelist } from '../persisted-queries/operation-safelist';
import type { RateLimitDecision, TenantRateLimiter } from '../rate-limiting/tenant-rate-limiter';

/*
 * Everything that happens to a GraphQL request before Apollo parses it, in order:
 *   1. request id
 *   2. authentication (JWT or API key) -> res.locals.principal
 *   3. batch size, and the token count of each document (stops counting at the limit)
 *   4. tenant and per-caller rate limits (one Redis round trip) -> RateLimit-* headers, 429
 *   5. persisted operations: a persistedOnly key may only name registered operations; a
 *      registered operation's text is filled in from the safelist
 * A refusal here costs no parsing; it is answered in the same shape as a GraphQL error.
 */

export interface GuardedLocals {
  requestId: string;
  principal: Principal;
}

interface GraphQLRequestFields {
  query?: unknown;
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

/** The operations of a request: the JSON body (one, or an array when batched), or GET's query string. */
function operationsOf(req: Request): GraphQLRequestFields[] {
  if (req.method === 'GET') {
    const url = new URL(req.originalUrl, 'http://localhost');
    return [{ query: url.searchParams.get('query') ?? undefined, extensions: url.searchParams.get('extensions') ?? undefined }];
  }
  const body: unknown = req.body;
  if (Array.isArray(body)) return body as GraphQLRequestFields[];
  return body && typeof body === 'object' ? [body as GraphQLRequestFields] : [];
}

export function setRateLimitHeaders(res: Response, decision: RateLimitDecision): void {
  if (decision.outcome === 'store-unavailable') return;
  res.setHeader('RateLimit-Limit', String(decision.limit));
  res.setHeader('RateLimit-Remaining', String(decision.remaining));
  res.setHeader('RateLimit-Reset', String(decision.resetSeconds));
  if (decision.outcome === 'limited') res.setHeader('Retry-After', String(decision.retryAfterSeconds));
}

export function graphqlRequestGuard(deps: {
  authenticator: Authenticator;
  rateLimiter: TenantRateLimiter | null;
  safelist: OperationSafelist;
  apqCache: KeyValueCache<string>;
  maxBatchSize: number;
  maxTokens: number;
}): RequestHandler {
  async function enforceLimits(res: Response, principal: TenantPrincipal, cost: number): Promise<void> {
    if (!deps.rateLimiter) return;
    const decision = await deps.rateLimiter.check(principal, cost);
    setRateLimitHeaders(res, decision);
    if (decision.outcome === 'limited') {
      throw new AppError(
        ErrorCode.RATE_LIMITED,
        `Rate limit reached for ${principal.tenant.slug}; retry in ${decision.retryAfterSeconds} s`,
        { extensions: { retryAfter: decision.retryAfterSeconds }, httpStatus: 429 },
      );
    }
    if (decision.outcome === 'store-unavailable' && decision.policy === 'closed') {
      throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'Rate limiting is unavailable; retry shortly', {
        extensions: { retryAfter: 1 },
        httpStatus: 503,
      });
    }
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
      // POST: Apollo reads the body we fill in, as a plain query: with the hash still attached
      // it would hash the text again and write it to the APQ cache on every request. GET:
      // Apollo can only look the hash up in its APQ cache, so the document goes there first.
      operation.query = document;
      if (req.method === 'GET') {
        await deps.apqCache.set(`apq:${hash}`, document);
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
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    res.locals.requestId = requestId;
    try {
      const principal = await deps.authenticator.authenticate(req.headers);
      res.locals.principal = principal;
      const operations = operationsOf(req);
      if (Array.isArray(req.body) && operations.length > deps.maxBatchSize) {
        throw new AppError(
          ErrorCode.BATCH_TOO_LARGE,
          deps.maxBatchSize <= 1
            ? 'Batched requests are turned off; send one operation per request'
            : `At most ${deps.maxBatchSize} operations per batch`,
          { httpStatus: 400 },
        );
      }
      for (const operation of operations) {
        if (typeof operation.query === 'string') assertTokenLimit(operation.query, deps.maxTokens);
      }
      if (isTenantPrincipal(principal)) {
        await enforceLimits(res, principal, Math.max(1, operations.length));
        for (const operation of operations) await resolvePersisted(req, principal, operation);
      }
      next();
    } catch (error) {
      if (!(error instanceof AppError)) {
        next(error);
        return;
      }
      res.status(httpStatusOf(error)).json(errorResponseBody(error));
    }
  };
}
