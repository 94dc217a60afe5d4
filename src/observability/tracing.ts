import { context, trace, type Attributes } from '@opentelemetry/api';
import { getRPCMetadata } from '@opentelemetry/core';
import type * as SdkNode from '@opentelemetry/sdk-node';
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as HttpInstr from '@opentelemetry/instrumentation-http';
import type * as ExpressInstr from '@opentelemetry/instrumentation-express';
import type * as GraphQLInstr from '@opentelemetry/instrumentation-graphql';
import type * as PgInstr from '@opentelemetry/instrumentation-pg';

/**
 * OpenTelemetry tracing: the official Node SDK with the http, express, graphql and pg
 * instrumentations, exporting OTLP over HTTP (JSON). Off unless OTEL_ENABLED=true, or
 * OTEL_EXPORTER_OTLP_ENDPOINT is set and OTEL_ENABLED is not false. The SDK reads its standard
 * variables itself (OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT, OTEL_SERVICE_NAME,
 * OTEL_TRACES_SAMPLER, OTEL_BSP_*).
 *
 * The instrumentations patch modules as they are loaded, so this must run before http,
 * express, graphql or pg are first required: src/main.ts imports ./start-tracing first of all
 * (see there). In-process test servers (jest) never trace: jest loads modules itself, around
 * the hooks the instrumentations rely on.
 */

export interface Tracing {
  /** Exports what is buffered and stops; resolves at once when tracing is off. */
  shutdown(): Promise<void>;
}

/** Span attribute names this server adds. */
export const SPAN_ATTRIBUTES = {
  requestId: 'fleet.request_id',
  tenantId: 'fleet.tenant_id',
  operationName: 'graphql.operation.name',
  operationType: 'graphql.operation.type',
} as const;

/** Paths probed by load balancers and Prometheus: a span each would drown the requests. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

const enabledFlag = (value: string | undefined) => (value === undefined || value === '' ? undefined : ['true', '1', 'yes'].includes(value));

export function tracingEnabled(env: NodeJS.ProcessEnv): boolean {
  return enabledFlag(env.OTEL_ENABLED) ?? Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export function startTracing(env: NodeJS.ProcessEnv): Tracing {
  if (!tracingEnabled(env)) return { shutdown: () => Promise.resolve() };
  // Loaded only when on: the SDK and its exporters are a few hundred modules that a server
  // without tracing should not pay for at start-up. Synchronous on purpose: they must patch
  // before the caller goes on to import the server.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp;
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof HttpInstr;
  const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express') as typeof ExpressInstr;
  const { GraphQLInstrumentation } = require('@opentelemetry/instrumentation-graphql') as typeof GraphQLInstr;
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof PgInstr;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME || 'fleet-graphql',
    traceExporter: new OTLPTraceExporter(),
    // Traces only: metrics are Prometheus's (/metrics) and logs pino's (stdout). The SDK would
    // otherwise export both over OTLP by default; OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER
    // turn them on as usual.
    ...(env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      new ExpressInstrumentation(),
      // Argument values stay masked (allowValues off); one span per resolved field would be a
      // span per list item, so trivial resolvers are skipped and list items merged.
      new GraphQLInstrumentation({ ignoreTrivialResolveSpans: true, mergeItems: true }),
      // Statements without their parameters (enhancedDatabaseReporting off): values may be personal data.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}

/**
 * Adds attributes to the request's spans: the one active now (an express middleware's, say)
 * and the request's root HTTP span, which the http instrumentation hands down in the context
 * (RPC metadata), so that a trace's first span says which request and operation it was.
 * A no-op when tracing is off (the API's spans are then non-recording).
 */
export function annotateRequestSpans(attributes: Attributes): void {
  const active = trace.getActiveSpan();
  active?.setAttributes(attributes);
  const root = getRPCMetadata(context.active())?.span;
  if (root && root !== active) root.setAttributes(attributes);
}
