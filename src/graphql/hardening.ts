import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { GraphQLError, Lexer, Source, TokenKind, type GraphQLSchema, type ValidationContext, type ValidationRule } from 'graphql';
import { directiveEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/config';
import { AppError, ErrorCode, problemExtensions } from '../errors/app-error';

/*
 * Limits on hostile documents, all configurable (see README). graphql-armor's validation rules
 * check depth (fragment cycles included), aliases and directives, and its Apollo plugin hides
 * field suggestions in production; graphql-query-complexity prices a query from the SDL's @cost
 * directives, list fields multiplied by their `first`, after variables are known, so
 * `first: $n` cannot dodge it. The token limit runs before Apollo parses anything.
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
): { plugins: ApolloServerPlugin[]; validationRules: ValidationRule[] } {
  const reject = (code: ErrorCode) => ({ onReject: [reportAs(code)], propagateOnRejection: false });
  const suggestions = new ApolloArmor({
    blockFieldSuggestion: { enabled: limits.blockFieldSuggestions },
    maxDepth: { enabled: false },
    maxAliases: { enabled: false },
    maxDirectives: { enabled: false },
    maxTokens: { enabled: false },
    costLimit: { enabled: false },
  }).protect();
  return {
    plugins: [...suggestions.plugins, costLimitPlugin(limits.maxCost, schema)],
    validationRules: [
      maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...reject(ErrorCode.QUERY_TOO_DEEP) }),
      maxAliasesRule({ n: limits.maxAliases, ...reject(ErrorCode.TOO_MANY_ALIASES) }),
      maxDirectivesRule({ n: limits.maxDirectives, ...reject(ErrorCode.TOO_MANY_DIRECTIVES) }),
    ],
  };
}

/**
 * Refuses a document with more than `maxTokens` lexical tokens before anything parses it; the
 * count stops at the limit, so a megabyte of tokens costs no more than the limit. (graphql-armor's
 * Apollo token plugin rejects from a hook where Apollo answers 500; counting with graphql's own
 * lexer up front gives a proper 400.)
 */
export function assertTokenLimit(document: string, maxTokens: number): void {
  const lexer = new Lexer(new Source(document));
  let count = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) {
      count += 1;
      if (count > maxTokens) {
        throw new AppError(ErrorCode.TOO_MANY_TOKENS, `Document has more than ${maxTokens} tokens`, { httpStatus: 400 });
      }
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    // A lexing error is the parser's to report, with its position.
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

function costLimitPlugin(maxCost: number, schema: () => GraphQLSchema): ApolloServerPlugin {
  const estimators = [directiveEstimator({ name: 'cost' }), simpleEstimator({ defaultComplexity: 1 })];
  // A document's cost depends only on it and its variables: clients repeat both all day.
  const costs = new LRUCache<string, number>({ max: 5_000 });
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, queryHash }) {
          const cacheKey = `${queryHash}:${request.operationName ?? ''}:${JSON.stringify(request.variables ?? {})}`;
          let cost = costs.get(cacheKey);
          if (cost === undefined) {
            try {
              cost = getComplexity({
                schema: schema(),
                query: document,
                variables: request.variables ?? {},
                ...(request.operationName ? { operationName: request.operationName } : {}),
                estimators,
              });
            } catch (error) {
              // Variables that do not fit their types: nothing will run, and execution reports
              // them as BAD_USER_INPUT, with the offending variable.
              if (error instanceof GraphQLError) return;
              throw error;
            }
            if (cacheKey.length < 2_000) costs.set(cacheKey, cost);
          }
          if (cost > maxCost) {
            const message = `Query cost ${cost} exceeds the limit of ${maxCost}; ask for fewer items (first) or fewer fields`;
            throw new GraphQLError(message, {
              extensions: { ...problemExtensions(ErrorCode.QUERY_TOO_COMPLEX, message), cost, maxCost, http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}
