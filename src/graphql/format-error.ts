import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { isDatabaseUnavailable, isReadOnlyTransaction, isStatementTimeout } from '../database/prisma-errors';
import { AppError, ErrorCode, READ_ONLY_RETRY_AFTER_SECONDS, isErrorCode, problemExtensions, tenantReadOnly } from '../errors/app-error';
import { describeError, type Logger } from '../observability/logger';

/** Extensions a client may see besides the problem fields. */
const PASS_THROUGH = ['field', 'retryAfter', 'step', 'tenantId', 'cost', 'maxCost', 'from', 'to', 'allowed', 'currentVersion', 'tripStatus', 'openStops', 'editableUntil', 'quota', 'limit', 'usage'] as const;

/**
 * The one place errors are shaped for clients. Expected errors keep their message and gain
 * RFC 7807 problem fields; anything else is logged by class and code and masked as
 * INTERNAL_SERVER_ERROR, so no stack trace, SQL or driver message ever reaches a response.
 */
export function createErrorFormatter(logger: Logger, options: { hideSuggestions: boolean }) {
  const format = formatterOf(logger);
  if (!options.hideSuggestions) return format;
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const shaped = format(formatted, error);
    const message = withoutSuggestions(shaped.message);
    if (message === shaped.message) return shaped;
    const extensions = shaped.extensions?.detail === shaped.message ? { ...shaped.extensions, detail: message } : shaped.extensions;
    return { ...shaped, message, ...(extensions ? { extensions } : {}) };
  };
}

/**
 * graphql-js suggests names in many messages ('Did you mean "plate"?', 'Did you mean the enum
 * value "ENTERPRISE"?', ...), which tells a stranger the schema in production; every such
 * sentence is removed, whatever its form (graphql-armor's mask matched only some of them).
 */
export function withoutSuggestions(message: string): string {
  return message.replace(/\s*Did you mean [^?]*\?/g, '').trim();
}

function formatterOf(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    // A limit (graphql-armor) tags its rejection with our code; GraphQL reports it as a
    // validation or parse failure.
    const limitCode = formatted.extensions?.limitCode;
    // Apollo answers some malformed requests (a persisted-query hash that does not match its
    // query) with a 4xx status but no code: they are the client's doing, not ours.
    const requestStatus = (original instanceof GraphQLError ? original.extensions.http : undefined) as { status?: unknown } | undefined;
    const uncodedClientError =
      original instanceof GraphQLError &&
      !(original instanceof AppError) &&
      formatted.extensions?.code === ErrorCode.INTERNAL_SERVER_ERROR &&
      typeof requestStatus?.status === 'number' &&
      requestStatus.status >= 400 &&
      requestStatus.status < 500;
    const code = isErrorCode(limitCode) ? limitCode : uncodedClientError ? ErrorCode.BAD_REQUEST : formatted.extensions?.code;
    // Ours (AppError), or GraphQL's and Apollo's own request errors (a GraphQLError with a
    // known code). Anything else, including every Error a resolver or driver threw, is masked.
    const expected =
      isErrorCode(code) &&
      code !== ErrorCode.INTERNAL_SERVER_ERROR &&
      (original instanceof AppError || original instanceof GraphQLError || !(original instanceof Error));
    if (expected) {
      const extra = Object.fromEntries(
        PASS_THROUGH.filter((key) => formatted.extensions?.[key] !== undefined).map((key) => [key, formatted.extensions?.[key]]),
      );
      // Apollo's own request errors carry the HTTP status they are answered with (405 for a PUT).
      const httpStatus = requestStatus;
      return {
        message: formatted.message,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: {
          ...problemExtensions(code, formatted.message),
          ...(typeof httpStatus?.status === 'number' && httpStatus.status >= 400 ? { status: httpStatus.status } : {}),
          ...extra,
        },
      };
    }
    if (isReadOnlyTransaction(original)) {
      const readOnly = tenantReadOnly();
      return {
        message: readOnly.message,
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { ...problemExtensions(ErrorCode.TENANT_READ_ONLY, readOnly.message), retryAfter: READ_ONLY_RETRY_AFTER_SECONDS },
      };
    }
    if (isStatementTimeout(original)) {
      // PostgreSQL cancelled a statement that ran past the operation's time (statement_timeout):
      // the operation's own weight, and any change it was making was rolled back.
      const message = 'The operation ran too long in the database and was stopped; nothing it was changing was kept; ask for less';
      return {
        message,
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: problemExtensions(ErrorCode.OPERATION_TIMEOUT, message),
      };
    }
    if (isDatabaseUnavailable(original)) {
      // Not a bug but an outage (readyz says so too): the client may retry; the driver's
      // message, which names hosts and ports, stays in the log.
      logger.warn({ err: describeError(original), path: formatted.path }, 'database unavailable');
      return {
        message: 'The database is unavailable; retry shortly',
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { ...problemExtensions(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly'), retryAfter: 1 },
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
