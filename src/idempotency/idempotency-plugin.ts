import { HeaderMap, type ApolloServerPlugin, type GraphQLResponse } from '@apollo/server';
import type { FormattedExecutionResult } from 'graphql';
import { isTenantPrincipal, principalKey, type Principal } from '../auth/principal';
import { AppError, ErrorCode, errorResponseBody, httpStatusOf } from '../errors/app-error';
import type { RequestContext } from '../graphql/context';
import { describeError, type Logger } from '../observability/logger';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER, requestFingerprint } from './idempotency-key';
import type { HeldKey, IdempotencyStore } from './idempotency-store';
import { resolvedSecret } from './secret-fields';

/*
 * Idempotency-Key on mutations (README, "Idempotency keys"; docs/decisions/0012). The guard has
 * checked the header's form (src/http/graphql-request-guard.ts); here, once the operation is
 * parsed, validated, priced and admitted (so a request refused before it runs never takes the
 * key), a mutation claims its key in the caller's scope:
 *   - claimed: it runs, and its answer is stored when it is sent (or the key is given back when
 *     nothing ran: refused by policy, a field's rate limit, an outage)
 *   - the same request already answered: that answer, with `Idempotency-Replayed: true`,
 *     nothing executed
 *   - another request under the key: 422 IDEMPOTENCY_KEY_REUSED
 *   - the same request still running: waited for (IDEMPOTENCY_WAIT_MS), then replayed, or 409
 *     IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After
 *   - its answer held a one-time secret (a `@secret` field): 409 IDEMPOTENT_SECRET_NOT_REPLAYED
 * Queries and signed-out calls ignore the header. Without the header nothing here runs.
 */

/** Whose keys these are: a tenant's member or API key, or a platform admin. Signed-out: none. */
export function idempotencyScopeOf(principal: Principal): string | undefined {
  if (isTenantPrincipal(principal)) return `${principal.tenant.id}:${principalKey(principal)}`;
  if (principal.kind === 'platformAdmin') return `platform:${principal.adminId}`;
  return undefined;
}

/**
 * Nothing ran, so the key is given back rather than burnt: the whole request was refused for now
 * (429, a 5xx: rate limits, overload, an outage, a statement timeout, which rolls back), or every
 * root field is null for a refusal before its resolver did anything (401, 403, 429, 5xx). An
 * operation that ran and failed for its input (BAD_USER_INPUT, CONFLICT, NOT_FOUND...) is
 * stored and replayed like a success: the same request gets the same answer.
 */
export function nothingRan(result: FormattedExecutionResult, httpStatus: number): boolean {
  if (httpStatus === 429 || httpStatus >= 500) return true;
  const errors = result.errors ?? [];
  if (errors.length === 0) return false;
  if (result.data && Object.values(result.data).some((value) => value !== null)) return false;
  return errors.every((error) => {
    const status = error.extensions?.status;
    return typeof status === 'number' && (status === 401 || status === 403 || status === 429 || status >= 500);
  });
}

/** What a request's key came to, for its log line (src/graphql/request-lifecycle-plugin.ts). */
export type IdempotencyOutcome = 'executed' | 'replayed' | 'refused';
const outcomes = new WeakMap<object, IdempotencyOutcome>();

/** The outcome of the request's Idempotency-Key, if a mutation carried one. */
export function idempotencyOutcomeOf(context: object): IdempotencyOutcome | undefined {
  return outcomes.get(context);
}

function refusal(error: AppError, headers: [string, string][] = []): GraphQLResponse {
  return {
    http: { status: httpStatusOf(error), headers: new HeaderMap(headers) },
    body: { kind: 'single', singleResult: errorResponseBody(error) },
  };
}

export function idempotencyPlugin(store: IdempotencyStore, logger: Logger): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart({ request }) {
      const key = request.http?.headers.get(IDEMPOTENCY_KEY_HEADER);
      if (key === undefined) return;
      /** Set when this request holds the key and runs. */
      let claim: HeldKey | undefined;
      return {
        async responseForOperation({ operation, contextValue, source, request: { operationName, variables } }) {
          const scope = idempotencyScopeOf(contextValue.principal);
          if (operation.operation !== 'mutation' || !scope) return null;
          const fingerprint = requestFingerprint({ query: source, operationName: operationName ?? null, variables: variables ?? {} });
          let outcome;
          try {
            outcome = await store.claim(scope, key, fingerprint);
          } catch (error) {
            outcomes.set(contextValue, 'refused');
            // Never run a keyed mutation whose key could not be checked: that is what the key is for.
            logger.warn({ requestId: contextValue.requestId, err: describeError(error) }, 'idempotency key could not be claimed');
            return refusal(
              new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The Idempotency-Key could not be checked; retry shortly', { extensions: { retryAfter: 1 } }),
              [['retry-after', '1']],
            );
          }
          outcomes.set(contextValue, outcome.kind === 'claimed' ? 'executed' : outcome.kind === 'completed' ? 'replayed' : 'refused');
          switch (outcome.kind) {
            case 'claimed':
              claim = outcome.claim;
              store.sweepWhenDue();
              return null;
            case 'completed':
              return {
                http: { status: outcome.status, headers: new HeaderMap([[IDEMPOTENCY_REPLAYED_HEADER, 'true']]) },
                body: { kind: 'single', singleResult: JSON.parse(outcome.body) as FormattedExecutionResult },
              };
            case 'reused':
              return refusal(
                new AppError(
                  ErrorCode.IDEMPOTENCY_KEY_REUSED,
                  'This Idempotency-Key was used for another request (operation, name or variables differ); use a new key for a new request',
                ),
              );
            case 'withheld':
              return refusal(
                new AppError(
                  ErrorCode.IDEMPOTENT_SECRET_NOT_REPLAYED,
                  'The request with this Idempotency-Key succeeded, but its answer held a secret, which is shown only once and was not stored',
                  { extensions: { completedAt: outcome.completedAt.toISOString() } },
                ),
                [[IDEMPOTENCY_REPLAYED_HEADER, 'true']],
              );
            case 'in-progress':
              return refusal(
                new AppError(ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS, 'A request with this Idempotency-Key is still running; retry shortly for its answer', {
                  extensions: { retryAfter: outcome.retryAfterSeconds },
                }),
                [['retry-after', String(outcome.retryAfterSeconds)]],
              );
          }
        },

        // Runs after the other plugins' (it is registered last): the answer and status are final.
        async willSendResponse({ response, contextValue }) {
          if (claim === undefined) return;
          const held = claim;
          claim = undefined;
          try {
            if (response.body.kind !== 'single') {
              await store.release(held); // an incremental answer is not replayable; mutations here never defer
              return;
            }
            const result = response.body.singleResult;
            const status = response.http.status ?? 200;
            if (nothingRan(result, status)) await store.release(held);
            else if (resolvedSecret(contextValue)) await store.complete(held, 'withheld');
            else await store.complete(held, { status, body: JSON.stringify(result) });
          } catch (error) {
            // The claim stays IN_PROGRESS: retries wait, then answer 409, until it is stale.
            logger.warn({ requestId: contextValue.requestId, err: describeError(error) }, 'idempotent answer could not be stored');
          }
        },
      };
    },
  };
}
