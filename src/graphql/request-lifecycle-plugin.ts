import type { ApolloServerPlugin } from '@apollo/server';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { annotateRequestSpans, SPAN_ATTRIBUTES } from '../observability/tracing';
import { idempotencyOutcomeOf } from '../idempotency/idempotency-plugin';
import type { RequestContext } from './context';

/**
 * Per operation: returns the tenant-client lease once the response is ready (whatever
 * happened), and records one log line and one metric sample; names the operation on the
 * request's root span (when tracing), where the graphql instrumentation's own spans sit below.
 */
export function requestLifecyclePlugin(metrics: Metrics, logger: Logger): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      const startedAt = performance.now();
      return {
        async didResolveOperation({ operation, contextValue }) {
          if (!operation) return;
          contextValue.isMutation = operation.operation === 'mutation';
          annotateRequestSpans({
            [SPAN_ATTRIBUTES.operationType]: operation.operation,
            ...(operation.name ? { [SPAN_ATTRIBUTES.operationName]: operation.name.value } : {}),
          });
        },
        async willSendResponse({ contextValue, operation, operationName, errors, response }) {
          contextValue.release();
          const durationMs = performance.now() - startedAt;
          const codes = [
            ...(errors ?? []).map((error) => error.extensions?.code),
            ...(response.body.kind === 'single' ? (response.body.singleResult.errors ?? []).map((error) => error.extensions?.code) : []),
          ].filter((code): code is string => typeof code === 'string');
          const outcome = codes.length === 0 ? 'ok' : [...new Set(codes)].join(',');
          metrics.graphqlOperations.observe({ operation: operation?.operation ?? 'unknown', outcome }, durationMs / 1000);
          const { principal } = contextValue;
          // A name Apollo did not find in the document (or no document) is not a name to keep.
          metrics.recordRequest({
            operationName: operation ? (operation.name?.value ?? null) : null,
            signedIn: principal.kind !== 'anonymous',
            codes,
            seconds: durationMs / 1000,
          });
          // The server's logger with the request id as a field: the same line as a child would write.
          logger.info(
            {
              requestId: contextValue.requestId,
              operationName: operationName ?? null,
              operation: operation?.operation ?? null,
              principal: principal.kind,
              tenant: principal.kind === 'member' ? principal.tenant.slug : undefined,
              durationMs: Math.round(durationMs * 10) / 10,
              outcome,
              // Only for a mutation with an Idempotency-Key: executed, replayed (nothing ran) or refused.
              idempotency: idempotencyOutcomeOf(contextValue),
            },
            'graphql operation',
          );
        },
      };
    },
  };
}
