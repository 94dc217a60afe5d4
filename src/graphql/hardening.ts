import type { ApolloServerPlugin } from '@apollo/server';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { GraphQLError, getVariableValues, type DocumentNode, type GraphQLSchema, type ValidationContext, type ValidationRule } from 'graphql';
import { directiveEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/config';
import { AppError, ErrorCode, problemExtensions } from '../errors/app-error';
import type { RequestContext } from './context';

/*
 * Limits on hostile documents, all configurable (see README). graphql-armor's validation rules
 * check depth (fragment cycles included) and aliases; graphql-query-complexity
 * prices a query from the SDL's @cost directives, list fields multiplied by their `first`, after
 * variables are known, so `first: $n` cannot dodge it. Token, directive, selection and fragment
 * counts run before Apollo parses anything (document-shape.ts); suggestions are removed by the error
 * formatter (format-error.ts).
 */

export type HardeningLimits = Omit<Config['limits'], 'maxBodyBytes' | 'maxBatchSize'>;

/**
 * armor reports its rejections without a code of ours; report each with one instead (Apollo
 * files them under GRAPHQL_VALIDATION_FAILED and keeps our extensions; formatError then uses
 * `limitCode`).
 */
function reportAs(code: ErrorCode) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { limitCode: code } }));
  };
}

export function hardeningPlugins(
  limits: HardeningLimits,
  schema: () => GraphQLSchema,
  chargeCost?: ChargeCost,
): { plugins: ApolloServerPlugin<RequestContext>[]; validationRules: ValidationRule[] } {
  return {
    plugins: [costLimitPlugin(limits.maxCost, schema, chargeCost)],
    validationRules: documentLimitRules(limits),
  };
}

/**
 * Depth and aliases, as validation rules: Apollo runs them over HTTP, the WebSocket transport
 * (src/subscriptions) beside graphql-js's own rules. A rejection carries `limitCode`.
 */
export function documentLimitRules(limits: Pick<HardeningLimits, 'maxDepth' | 'maxAliases'>): ValidationRule[] {
  const reject = (code: ErrorCode) => ({ onReject: [reportAs(code)], propagateOnRejection: false });
  return [
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...reject(ErrorCode.QUERY_TOO_DEEP) }),
    // Every alias counts, `__typename` ones too (armor exempts those by default): 600 of them
    // per vehicle made a 20 MB answer out of a 4 KB document.
    maxAliasesRule({ n: limits.maxAliases, allowList: [], ...reject(ErrorCode.TOO_MANY_ALIASES) }),
  ];
}

const COST_ESTIMATORS = [directiveEstimator({ name: 'cost' }), simpleEstimator({ defaultComplexity: 1 })];

/**
 * An operation's cost from the SDL's @cost directives, or QUERY_TOO_COMPLEX when it is over
 * `maxCost` or cannot be priced (failing closed). Variables must already fit their types.
 */
export function priceOperation(
  schema: GraphQLSchema,
  request: { document: DocumentNode; variables: Record<string, unknown>; operationName?: string | null | undefined },
  maxCost: number,
): number {
  let cost: number;
  try {
    cost = getComplexity({
      schema,
      query: request.document,
      variables: request.variables,
      ...(request.operationName ? { operationName: request.operationName } : {}),
      estimators: COST_ESTIMATORS,
    });
  } catch (error) {
    const reason = error instanceof GraphQLError ? error.message : 'its cost could not be computed';
    throw tooComplex(`Query refused: ${reason}; ask for fewer items (first) or fewer fields`, { maxCost });
  }
  if (!Number.isFinite(cost)) throw tooComplex('Query refused: its cost could not be computed', { maxCost });
  assertWithinCost(cost, maxCost);
  return cost;
}

function assertWithinCost(cost: number, maxCost: number): void {
  if (cost > maxCost) {
    throw tooComplex(`Query cost ${cost} exceeds the limit of ${maxCost}; ask for fewer items (first) or fewer fields`, { cost, maxCost });
  }
}

/**
 * How deeply variables and extensions may nest (the variables object itself is the first
 * level). GraphQL input nests no deeper than a document, and documents are capped at MAX_DEPTH
 * (12 by default), so 64 refuses nothing real; a constant, not a setting, for that reason.
 */
export const MAX_INPUT_NESTING = 64;

// With the u flag a well-formed pair is one astral code point; only a lone half is Cs.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Refuses JSON from the request (`field` names it in the message) that nests deeper than
 * MAX_INPUT_NESTING, or holds a string, key or value, with a lone UTF-16 surrogate. JSON.parse
 * accepts any depth, but what comes after recurses (JSON.stringify, graphql-js's coercion) and
 * overflows the stack a few thousand levels down, into a 500; and PostgreSQL stores a lone
 * surrogate as U+FFFD, so different inputs would be stored as the same text. An explicit stack,
 * not recursion, and it stops at the first problem.
 */
export function assertSaneInput(value: unknown, field: string): void {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: current, depth } = next;
    if (typeof current === 'string') {
      assertWellFormed(current, field);
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_INPUT_NESTING) {
      throw new AppError(ErrorCode.BAD_REQUEST, `Request ${field} are nested more than ${MAX_INPUT_NESTING} levels deep`, {
        httpStatus: 400,
      });
    }
    if (Array.isArray(current)) {
      for (const item of current as unknown[]) pending.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const [key, item] of Object.entries(current)) {
      assertWellFormed(key, field);
      pending.push({ value: item, depth: depth + 1 });
    }
  }
}

function assertWellFormed(text: string, field: string): void {
  if (LONE_SURROGATE.test(text)) {
    throw new AppError(ErrorCode.BAD_REQUEST, `Request contains malformed Unicode (a lone surrogate) in ${field}`, { httpStatus: 400 });
  }
}

/** What an operation cost, once priced (before it executes); absent for one refused earlier. */
const operationCosts = new WeakMap<object, number>();

export function operationCostOf(contextValue: object): number | undefined {
  return operationCosts.get(contextValue);
}

/**
 * Spends an operation's cost from the caller's budgets (rate limits charge cost, not one token
 * per request), or throws the refusal. Given by the HTTP layer, which owns the rate limiter.
 */
export type ChargeCost = (contextValue: RequestContext, cost: number, headers: Map<string, string>) => Promise<void>;

const tooComplex = (message: string, extensions: Record<string, unknown> = {}) =>
  new GraphQLError(message, {
    extensions: { ...problemExtensions(ErrorCode.QUERY_TOO_COMPLEX, message), ...extensions, http: { status: 400 } },
  });

/**
 * Prices every operation before it runs and refuses what costs too much, failing closed: a
 * query whose cost cannot be computed (graphql-query-complexity gives up at 10,000 nodes, with
 * a GraphQLError) is refused, never run unpriced. Variables that do not fit their types are left
 * to execution, which refuses them with the offending variable named and runs nothing.
 */
function costLimitPlugin(maxCost: number, schema: () => GraphQLSchema, chargeCost?: ChargeCost): ApolloServerPlugin<RequestContext> {
  // A document's cost depends only on it and its variables: clients repeat both all day.
  const costs = new LRUCache<string, number>({ max: 5_000 });
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, queryHash, operation, contextValue, response }) {
          if (operation?.operation === 'subscription') {
            // Apollo cannot stream a subscription's events over HTTP: src/subscriptions serves them.
            throw new AppError(ErrorCode.BAD_REQUEST, 'Subscriptions are served over WebSocket at this same path (graphql-transport-ws), not over HTTP', { httpStatus: 400 });
          }
          const cacheKey = `${queryHash}:${request.operationName ?? ''}:${JSON.stringify(request.variables ?? {})}`;
          let cost = costs.get(cacheKey);
          if (cost === undefined) {
            const coerced = getVariableValues(schema(), operation?.variableDefinitions ?? [], request.variables ?? {}, { maxErrors: 1 });
            if (coerced.errors) return;
            cost = priceOperation(schema(), { document, variables: request.variables ?? {}, operationName: request.operationName }, maxCost);
            if (cacheKey.length < 2_000) costs.set(cacheKey, cost);
          }
          assertWithinCost(cost, maxCost);
          operationCosts.set(contextValue, cost);
          if (chargeCost) await chargeCost(contextValue, cost, response.http.headers);
        },
      };
    },
  };
}
