import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { AppError, ErrorCode, isErrorCode, problemExtensions } from '../errors/app-error';
import { describeError, type Logger } from '../observability/logger';

/** Extensions a client may see besides the problem fields. */
const PASS_THROUGH = ['field', 'retryAfter', 'step', 'tenantId'] as const;

/** Codes GraphQL or Apollo produce for malformed requests; their messages are safe to show. */
const REQUEST_ERROR_CODES = new Set<string>([
  ErrorCode.GRAPHQL_PARSE_FAILED,
  ErrorCode.GRAPHQL_VALIDATION_FAILED,
  ErrorCode.BAD_USER_INPUT,
  ErrorCode.PERSISTED_QUERY_NOT_FOUND,
  ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED,
  ErrorCode.OPERATION_RESOLUTION_FAILURE,
  ErrorCode.BAD_REQUEST,
]);

/**
 * The one place errors are shaped for clients. Expected errors (AppError, and GraphQL's own
 * request errors) keep their message and gain RFC 7807 problem fields; anything else is
 * logged by class and code and masked as INTERNAL_SERVER_ERROR, so no stack trace, SQL or
 * driver message ever reaches a response.
 */
export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const code = formatted.extensions?.code;
    const expected =
      original instanceof AppError ||
      (isErrorCode(code) && REQUEST_ERROR_CODES.has(code) && (original instanceof GraphQLError || !(original instanceof Error)));
    if (expected && isErrorCode(code)) {
      const extra = Object.fromEntries(
        PASS_THROUGH.filter((key) => formatted.extensions?.[key] !== undefined).map((key) => [key, formatted.extensions?.[key]]),
      );
      return {
        message: formatted.message,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { ...problemExtensions(code, formatted.message), ...extra },
      };
    }
    logger.error({ err: describeError(original), path: formatted.path }, 'unexpected error masked');
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: problemExtensions(ErrorCode.INTERNAL_SERVER_ERROR, 'An unexpected error occurred; it has been logged'),
    };
  };
}
