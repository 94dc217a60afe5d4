import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';

/*
 * One rule for the HTTP status of a GraphQL response, after the GraphQL-over-HTTP spec:
 *
 * - The operation ran (the body has `data`, even `null`): 200, whatever its fields' errors,
 *   for `application/json` and `application/graphql-response+json` alike. A failed login, a
 *   spent refresh token or a tenant field asked for without a token are field errors: their
 *   code is in `errors[].extensions.code`, and `extensions.status` names the problem's own
 *   status (401, 403, ...), not the response's.
 * - Except when it ran but the server could not serve any of it: no root field has a value, and
 *   an error says the server is unavailable for now (a 5xx that carries `retryAfter`: the
 *   database busy or down, rate limits unavailable under the `closed` policy, overload). That
 *   is a refusal of the whole request, and a client, proxy or load balancer acts on its 503 and
 *   Retry-After, not on a 200 whose body says the same. The spec recommends 200 for a `null`
 *   `data` but does not require it. A field's own limit (`@rateLimit`, 429) stays a field error.
 * - The request was refused before anything ran (no `data`: an invalid or missing credential
 *   the guard rejects, a rate limit, a document limit, a parse or validation failure): the
 *   4xx/5xx of its code. `application/graphql-response+json` requires that; for
 *   `application/json` the spec prefers 200 but allows it, and a 401, 429 or 503 with
 *   Retry-After is what clients and proxies act on.
 *
 * Every 429 or 503 carries Retry-After, from the refusal's `retryAfter`.
 *
 * Errors thrown while executing may carry an HTTP status of their own (the same helpers serve
 * the guard, where the status is right); Apollo would apply it to the whole response. This
 * plugin is the one place that decides.
 */
export function httpStatusPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors = [] } = response.body.singleResult;
          if (data !== undefined) response.http.status = unavailableThroughout(data, errors)?.status ?? 200;
          const status = response.http.status ?? 200;
          if ((status === 429 || status === 503) && !response.http.headers.has('retry-after')) {
            const retryAfter = longestRetryAfter(errors);
            if (retryAfter !== undefined) response.http.headers.set('retry-after', String(retryAfter));
          }
        },
      };
    },
  };
}

const retryAfterOf = (error: GraphQLFormattedError): number | undefined => {
  const retryAfter = error.extensions?.retryAfter;
  return typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? retryAfter : undefined;
};

function longestRetryAfter(errors: readonly GraphQLFormattedError[]): number | undefined {
  const all = errors.map(retryAfterOf).filter((value) => value !== undefined);
  return all.length > 0 ? Math.max(...all) : undefined;
}

/**
 * The "come back later" error of an operation that produced nothing: every root field (or the
 * whole `data`, when a non-null one failed) is null because of an error at its path, and one of
 * the errors is a 5xx with a `retryAfter`.
 */
function unavailableThroughout(data: Record<string, unknown> | null, errors: readonly GraphQLFormattedError[]): { status: number } | undefined {
  const unavailable = errors.find((error) => {
    const status = error.extensions?.status;
    return typeof status === 'number' && status >= 500 && retryAfterOf(error) !== undefined;
  });
  if (!unavailable) return undefined;
  if (data !== null) {
    const failedRoots = new Set(errors.map((error) => error.path?.[0]));
    if (!Object.entries(data).every(([key, value]) => value === null && failedRoots.has(key))) return undefined;
  }
  return { status: unavailable.extensions?.status as number };
}
