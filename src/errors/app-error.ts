import { GraphQLError } from 'graphql';

/**
 * Every error a client can see carries one of these codes in `extensions.code`, plus an
 * RFC 7807-style problem description (`type`, `title`, `status`, `detail`).
 */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  CONFLICT: 'CONFLICT',
  TENANT_SUSPENDED: 'TENANT_SUSPENDED',
  TENANT_NOT_READY: 'TENANT_NOT_READY',
  PROVISIONING_FAILED: 'PROVISIONING_FAILED',
  RATE_LIMITED: 'RATE_LIMITED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  PERSISTED_QUERY_NOT_FOUND: 'PERSISTED_QUERY_NOT_FOUND',
  PERSISTED_QUERY_NOT_SUPPORTED: 'PERSISTED_QUERY_NOT_SUPPORTED',
  OPERATION_RESOLUTION_FAILURE: 'OPERATION_RESOLUTION_FAILURE',
  PERSISTED_QUERY_REQUIRED: 'PERSISTED_QUERY_REQUIRED',
  PERSISTED_QUERY_NOT_REGISTERED: 'PERSISTED_QUERY_NOT_REGISTERED',
  QUERY_TOO_DEEP: 'QUERY_TOO_DEEP',
  TOO_MANY_ALIASES: 'TOO_MANY_ALIASES',
  TOO_MANY_DIRECTIVES: 'TOO_MANY_DIRECTIVES',
  TOO_MANY_TOKENS: 'TOO_MANY_TOKENS',
  TOO_MANY_SELECTIONS: 'TOO_MANY_SELECTIONS',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  RESPONSE_TOO_LARGE: 'RESPONSE_TOO_LARGE',
  OPERATION_TIMEOUT: 'OPERATION_TIMEOUT',
  OVERLOADED: 'OVERLOADED',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  BAD_REQUEST: 'BAD_REQUEST',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  INVALID_TRANSITION: 'INVALID_TRANSITION',
  TRIP_UNASSIGNED: 'TRIP_UNASSIGNED',
  VEHICLE_UNAVAILABLE: 'VEHICLE_UNAVAILABLE',
  VEHICLE_BUSY: 'VEHICLE_BUSY',
  DRIVER_BUSY: 'DRIVER_BUSY',
  REASON_REQUIRED: 'REASON_REQUIRED',
  STOPS_INCOMPLETE: 'STOPS_INCOMPLETE',
  EDIT_WINDOW_CLOSED: 'EDIT_WINDOW_CLOSED',
  IDEMPOTENCY_KEY_INVALID: 'IDEMPOTENCY_KEY_INVALID',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  IDEMPOTENCY_KEY_IN_PROGRESS: 'IDEMPOTENCY_KEY_IN_PROGRESS',
  IDEMPOTENT_SECRET_NOT_REPLAYED: 'IDEMPOTENT_SECRET_NOT_REPLAYED',
  INVALID_CODE: 'INVALID_CODE',
  URL_NOT_ALLOWED: 'URL_NOT_ALLOWED',
  TENANT_READ_ONLY: 'TENANT_READ_ONLY',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

interface Problem {
  status: number;
  title: string;
}

/** One row per code: the HTTP status it stands for and its human title. */
export const PROBLEMS: Record<ErrorCode, Problem> = {
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  BAD_USER_INPUT: { status: 400, title: 'Invalid input' },
  CONFLICT: { status: 409, title: 'Conflict' },
  TENANT_SUSPENDED: { status: 403, title: 'Tenant suspended' },
  TENANT_NOT_READY: { status: 503, title: 'Tenant not ready' },
  PROVISIONING_FAILED: { status: 500, title: 'Tenant provisioning failed' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  GRAPHQL_PARSE_FAILED: { status: 400, title: 'Malformed GraphQL document' },
  GRAPHQL_VALIDATION_FAILED: { status: 400, title: 'Invalid GraphQL document' },
  PERSISTED_QUERY_NOT_FOUND: { status: 200, title: 'Persisted query not found' },
  PERSISTED_QUERY_NOT_SUPPORTED: { status: 400, title: 'Persisted queries not supported' },
  OPERATION_RESOLUTION_FAILURE: { status: 400, title: 'Operation not found in document' },
  PERSISTED_QUERY_REQUIRED: { status: 403, title: 'Only registered operations allowed' },
  PERSISTED_QUERY_NOT_REGISTERED: { status: 404, title: 'Operation not registered' },
  QUERY_TOO_DEEP: { status: 400, title: 'Query too deep' },
  TOO_MANY_ALIASES: { status: 400, title: 'Too many aliases' },
  TOO_MANY_DIRECTIVES: { status: 400, title: 'Too many directives' },
  TOO_MANY_TOKENS: { status: 400, title: 'Document too long' },
  TOO_MANY_SELECTIONS: { status: 400, title: 'Document too large' },
  QUERY_TOO_COMPLEX: { status: 400, title: 'Query too expensive' },
  RESPONSE_TOO_LARGE: { status: 400, title: 'Response too large' },
  OPERATION_TIMEOUT: { status: 503, title: 'Operation took too long' },
  OVERLOADED: { status: 503, title: 'Server overloaded' },
  BATCH_TOO_LARGE: { status: 400, title: 'Too many operations in one request' },
  TOO_MANY_SUBSCRIPTIONS: { status: 429, title: 'Too many subscriptions on one connection' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported request encoding' },
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  QUOTA_EXCEEDED: { status: 403, title: 'Quota exceeded' },
  INVALID_TRANSITION: { status: 409, title: 'Not an allowed transition' },
  TRIP_UNASSIGNED: { status: 409, title: 'Trip needs a vehicle and a driver' },
  VEHICLE_UNAVAILABLE: { status: 409, title: 'Vehicle not available' },
  VEHICLE_BUSY: { status: 409, title: 'Vehicle already on the road' },
  DRIVER_BUSY: { status: 409, title: 'Driver already on the road' },
  REASON_REQUIRED: { status: 400, title: 'A reason is required' },
  STOPS_INCOMPLETE: { status: 409, title: 'Stops not completed' },
  EDIT_WINDOW_CLOSED: { status: 409, title: 'No longer editable' },
  IDEMPOTENCY_KEY_INVALID: { status: 400, title: 'Invalid Idempotency-Key' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key reused for another request' },
  IDEMPOTENCY_KEY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is still running' },
  IDEMPOTENT_SECRET_NOT_REPLAYED: { status: 409, title: 'Already done; its secret is not shown again' },
  INVALID_CODE: { status: 400, title: 'Invalid or expired code' },
  URL_NOT_ALLOWED: { status: 400, title: 'URL not allowed' },
  TENANT_READ_ONLY: { status: 503, title: 'Tenant briefly read-only' },
  INTERNAL_SERVER_ERROR: { status: 500, title: 'Internal server error' },
};

/** Seconds a client is told to wait while a move has stopped its tenant's writes. */
export const READ_ONLY_RETRY_AFTER_SECONDS = 5;

/** A write refused while the tenant is being moved to another cluster; reads go on. */
export function tenantReadOnly(): AppError {
  return new AppError(ErrorCode.TENANT_READ_ONLY, 'This tenant is being moved and is read-only for a moment; retry the change shortly', {
    extensions: { retryAfter: READ_ONLY_RETRY_AFTER_SECONDS },
  });
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(PROBLEMS, code);
}

export function problemType(code: ErrorCode): string {
  return `urn:fleet-graphql:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

/** The JSON body of a request refused before GraphQL ran, shaped like a GraphQL response. */
export function errorResponseBody(error: AppError): { errors: { message: string; extensions: Record<string, unknown> }[] } {
  const { http: _http, ...extensions } = error.extensions as Record<string, unknown>;
  return { errors: [{ message: error.message, extensions }] };
}

export function httpStatusOf(error: AppError): number {
  const http = (error.extensions as { http?: { status?: number } }).http;
  return http?.status ?? PROBLEMS[error.code].status;
}

/** Problem fields for `extensions`; `detail` is the human-readable explanation. */
export function problemExtensions(code: ErrorCode, detail: string): Record<string, unknown> {
  const problem = PROBLEMS[code];
  return { code, type: problemType(code), title: problem.title, status: problem.status, detail };
}

/**
 * An expected failure with a client-facing message. Anything else that escapes a resolver is
 * masked as INTERNAL_SERVER_ERROR. `httpStatus` only matters when the whole request fails
 * (for example authentication in the context factory).
 */
export class AppError extends GraphQLError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { extensions?: Record<string, unknown>; httpStatus?: number; cause?: unknown } = {},
  ) {
    super(message, {
      extensions: {
        ...problemExtensions(code, message),
        ...options.extensions,
        ...(options.httpStatus ? { http: { status: options.httpStatus } } : {}),
      },
      originalError: options.cause instanceof Error ? options.cause : undefined,
    });
    this.name = 'AppError';
  }
}

export const notFound = (what: string) => new AppError(ErrorCode.NOT_FOUND, `${what} not found`);
export const forbidden = (message = 'You are not allowed to do this') => new AppError(ErrorCode.FORBIDDEN, message);
export const badInput = (message: string, field?: string) =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, field ? { extensions: { field } } : {});
export const conflict = (message: string, field?: string) =>
  new AppError(ErrorCode.CONFLICT, message, field ? { extensions: { field } } : {});

/** PostgreSQL text cannot hold NUL: such input is refused here rather than failing in the database. */
export function assertNoNul(value: string, field: string): void {
  if (value.includes('\u0000')) throw badInput(`${field} must not contain NUL characters`, field);
}
