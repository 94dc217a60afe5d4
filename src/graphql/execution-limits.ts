import type { ApolloServerPlugin } from '@apollo/server';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, getNamedType, isLeafType, type FormattedExecutionResult, type GraphQLSchema } from 'graphql';
import { AppError, ErrorCode, problemExtensions } from '../errors/app-error';
import { operationCostOf } from './hardening';

/*
 * Backstops behind the cost limit: a query stops resolving once it has run longer than
 * MAX_EXECUTION_MS, and an answer larger than MAX_RESPONSE_BYTES is not sent. Either way the
 * client gets one coded error and no data, never a truncated body. (Before the cost limit failed
 * closed, a 14.8 KB document produced 142 MB in ten seconds while other tenants waited.)
 */

export interface ExecutionLimits {
  maxExecutionMs: number;
  maxResponseBytes: number;
}

/** What the deadline check needs of a request's context: when it started. */
export interface TimedContext {
  startedAt: number;
}

/**
 * In a query, every field that resolves to objects (where work multiplies: lists, relations,
 * root fields) first checks the operation's deadline; past it, it throws instead of resolving.
 * Leaf fields are left alone: they are cheap, and there are many of them. Mutations are not
 * stopped: once one has changed something, its answer must say so, not time out.
 */
export function withExecutionDeadline(schema: GraphQLSchema, maxExecutionMs: number): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      if (isLeafType(getNamedType(fieldConfig.type))) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      return {
        ...fieldConfig,
        resolve: (source, args, context: TimedContext, info) => {
          if (info.operation.operation === 'query' && performance.now() - context.startedAt > maxExecutionMs) {
            throw operationTimeout(maxExecutionMs);
          }
          return resolve(source, args, context, info);
        },
      };
    },
  });
}

const operationTimeout = (maxExecutionMs: number) =>
  new AppError(ErrorCode.OPERATION_TIMEOUT, `The operation ran longer than ${maxExecutionMs} ms and was stopped; ask for less`);

/** Below this cost an answer cannot approach the size limit: such answers are not measured. */
const SMALL_COST = 100;

/**
 * Replaces an answer that ran out of time (one error per field that stopped, possibly many) or
 * grew too large with a single error and no data. Sizes are measured only for operations that
 * could be large (cost at least SMALL_COST, or unknown); a measured answer's text is kept for
 * Apollo to send (`stringifyResult`, given to Apollo's config), so it is serialised once.
 */
export function executionLimitsPlugin(limits: ExecutionLimits): {
  plugin: ApolloServerPlugin<TimedContext>;
  stringifyResult: (result: FormattedExecutionResult) => string;
} {
  /** Measured answers' JSON, by their data object (which is this request's own). */
  const measured = new WeakMap<object, string>();
  const plugin: ApolloServerPlugin<TimedContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          let refusal: { code: ErrorCode; message: string; status: number } | undefined;
          const timedOut = result.errors?.find((error) => error.extensions?.code === ErrorCode.OPERATION_TIMEOUT);
          if (timedOut) {
            // The first field's own words: stopped by the deadline, or by the database (rolled back).
            refusal = { code: ErrorCode.OPERATION_TIMEOUT, message: timedOut.message, status: 503 };
          } else if (result.data && (operationCostOf(contextValue) ?? Infinity) >= SMALL_COST) {
            const text = JSON.stringify(result);
            // A UTF-16 unit is at most 3 bytes of UTF-8: most answers need no byte count.
            const bytes = text.length * 3 <= limits.maxResponseBytes ? text.length : Buffer.byteLength(text);
            if (bytes <= limits.maxResponseBytes && !result.errors && !result.extensions) measured.set(result.data, text);
            if (bytes > limits.maxResponseBytes) {
              refusal = {
                code: ErrorCode.RESPONSE_TOO_LARGE,
                message: `The answer would be ${bytes} bytes, over the limit of ${limits.maxResponseBytes}; ask for fewer items (first) or fewer fields`,
                status: 400,
              };
            }
          }
          if (!refusal) return;
          // No Retry-After: the same operation would take as long again.
          response.body.singleResult = { errors: [{ message: refusal.message, extensions: problemExtensions(refusal.code, refusal.message) }] };
          response.http.status = refusal.status;
        },
      };
    },
  };
  return {
    plugin,
    // Apollo's own serialisation (its prettyJSONStringify) is JSON.stringify plus a newline; it
    // hands over {errors, data, extensions}, which serialises as `{"data":...}` without errors or
    // extensions, the same text as the measured answer.
    stringifyResult: (result) => {
      const text = result.data && result.errors === undefined && result.extensions === undefined ? measured.get(result.data) : undefined;
      return `${text ?? JSON.stringify(result)}\n`;
    },
  };
}
