import type { ApolloServerPlugin } from '@apollo/server';

/*
 * One rule for the HTTP status of a GraphQL response, after the GraphQL-over-HTTP spec:
 *
 * - The operation ran (the body has `data`, even `null`): 200, whatever its fields' errors,
 *   for `application/json` and `application/graphql-response+json` alike. A failed login, a
 *   spent refresh token or a tenant field asked for without a token are field errors: their
 *   code is in `errors[].extensions.code`, and `extensions.status` names the problem's own
 *   status (401, 403, ...), not the response's.
 * - The request was refused before anything ran (no `data`: an invalid or missing credential
 *   the guard rejects, a rate limit, a document limit, a parse or validation failure): the
 *   4xx/5xx of its code. `application/graphql-response+json` requires that; for
 *   `application/json` the spec prefers 200 but allows it, and a 401, 429 or 503 with
 *   Retry-After is what clients and proxies act on.
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
          if (response.body.kind === 'single' && response.body.singleResult.data !== undefined) response.http.status = 200;
        },
      };
    },
  };
}
