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
