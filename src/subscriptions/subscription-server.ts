import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type http from 'node:http';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { CloseCode, type SubscribePayload } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator } from '../auth/authenticator';
import { isTenantPrincipal, type TenantPrincipal } from '../auth/principal';
import type { Config } from '../config/config';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import { AppError, ErrorCode } from '../errors/app-error';
import { enforcePolicy, policyOfField, type AccessPolicy } from '../graphql/access-policy';
import { createRequestContext, type RequestContext, type Services } from '../graphql/context';
import { assertDocumentShape } from '../graphql/document-shape';
import { assertSaneInput, documentLimitRules, priceOperation } from '../graphql/hardening';
import { answerRateLimit } from '../http/rate-limit-answer';
import { describeError, type Logger } from '../observability/logger';
import type { RequestRateLimiter } from '../rate-limiting/request-rate-limiter';
import { isDatabaseUnavailable } from '../database/prisma-errors';
import { serveGraphqlWs } from './ws-transport';

/*
 * GraphQL subscriptions over WebSocket (graphql-ws, the graphql-transport-ws protocol) on the
 * HTTP server's port and path, as Apollo Server's documentation sets them up (Apollo itself
 * serves no subscriptions; ws-transport.ts is the glue). What HTTP requests meet in the guard and Apollo's plugins, a
 * subscription meets here, through the same code:
 *   connection_init  the same Authenticator, credentials in connectionParams as HTTP sends them
 *                    in headers; refused with 4401 (no or bad credentials) or 4403, nothing more
 *                    said; WS_CONNECTIONS_PER_TENANT per instance (1013, try again later)
 *   subscribe        SUBSCRIPTIONS_PER_CONNECTION; registered documents (persisted-only keys may
 *                    send nothing else); input sanity and the document's shape; parsing and
 *                    validation with the depth and alias rules; cost; the tenant's and caller's
 *                    rate-limit budgets, charged the cost; the access policy of the field (its
 *                    SDL directive, enforced by the schema's own wrapper before it listens)
 *   each event       a context of the subscriber's own, whose tenant lease is given back once
 *                    the event's answer is out
 *   while open       the principal is checked again when the platform says a session, membership,
 *                    API key or tenant changed, and every WS_RECHECK_INTERVAL_MS: a connection
 *                    whose credentials no longer hold, or no longer allow one of its
 *                    subscriptions, is closed with 4403 and the reason
 * Queries and mutations stay on HTTP, where idempotency keys, operations in flight and the
 * rest of the request path apply.
 */

export interface SubscriptionLimits {
  perConnection: number;
  connectionsPerTenant: number;
  connectionInitTimeoutMs: number;
  recheckIntervalMs: number;
}

interface Operation {
  policies: AccessPolicy[];
  context: RequestContext;
}

interface Connection {
  socket: WebSocket;
  /** The credentials as headers, for every later check. */
  headers: IncomingHttpHeaders;
  principal: TenantPrincipal;
  /** The API key's prefix (what the platform names in its notifications). */
  apiKeyPrefix: string | null;
  clientIp: string;
  operations: Map<string, Operation>;
}

export interface SubscriptionServer {
  /** Connections of this instance, per tenant when given. */
  connectionCount(tenantId?: string): number;
  /** Closes every socket (1001), waiting up to `graceMs` for clients to answer, then stops accepting. */
  close(graceMs: number): Promise<void>;
}

/** Credentials a connection_init may carry, named as the HTTP headers they stand for. */
const CREDENTIAL_PARAMS = ['authorization', 'x-api-key', 'x-tenant'] as const;

/** The close frame's reason is at most 123 bytes. */
const reasonOf = (text: string) => (Buffer.byteLength(text) <= 123 ? text : `${Buffer.from(text).subarray(0, 120).toString()}...`);

export function attachSubscriptionServer(deps: {
  httpServer: http.Server;
  schema: GraphQLSchema;
  services: Services;
  authenticator: Authenticator;
  notifications: PlatformNotifications;
  rateLimiter: RequestRateLimiter | null;
  limits: Config['limits'];
  subscriptionLimits: SubscriptionLimits;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  logger: Logger;
}): SubscriptionServer {
  const { schema, services, limits, subscriptionLimits, logger } = deps;
  const wsServer = new WebSocketServer({ server: deps.httpServer, path: '/graphql', maxPayload: limits.maxBodyBytes });
  const connections = new Map<WebSocket, Connection>();
  const byTenant = new Map<string, Set<Connection>>();
  const validationRules = [...specifiedRules, ...documentLimitRules(limits)];
  let closing = false;

  const forget = (connection: Connection) => {
    if (connections.get(connection.socket) !== connection) return;
    connections.delete(connection.socket);
    const set = byTenant.get(connection.principal.tenant.id);
    set?.delete(connection);
    if (set?.size === 0) byTenant.delete(connection.principal.tenant.id);
    for (const operation of connection.operations.values()) {
      operation.context.release();
      logger.info({ requestId: operation.context.requestId }, 'subscription ended with its connection');
    }
    connection.operations.clear();
  };

  const closeConnection = (connection: Connection, code: number, reason: string) => {
    forget(connection);
    connection.socket.close(code, reasonOf(reason));
  };

  /**
   * The connection's credentials again, through the same Authenticator (whose caches the
   * platform's notifications have just invalidated): still the same tenant, still allowed every
   * subscription it runs. A failure to check (the database away) keeps the connection.
   */
  const recheck = async (connection: Connection) => {
    let principal;
    try {
      principal = await deps.authenticator.authenticate(connection.headers);
      if (!isTenantPrincipal(principal) || principal.tenant.id !== connection.principal.tenant.id) {
        throw new AppError(ErrorCode.FORBIDDEN, 'credentials changed tenant');
      }
      for (const operation of connection.operations.values()) for (const policy of operation.policies) enforcePolicy(policy, principal);
    } catch (error) {
      if (!(error instanceof AppError)) {
        logger.warn({ err: describeError(error) }, 'subscription connection could not be checked again; kept until the next check');
        return;
      }
      if (connections.get(connection.socket) !== connection) return;
      closeConnection(connection, CloseCode.Forbidden, revocationReason(error, connection.principal));
      return;
    }
    connection.principal = principal;
  };

  const recheckAll = (matching: (connection: Connection) => boolean) => {
    for (const connection of [...connections.values()]) if (matching(connection)) void recheck(connection);
  };

  const watcher: NotificationSubscriber = {
    onNotification(channel: PlatformChannel, payload: string) {
      if (channel === 'fleet_tenant_changes') {
        recheckAll((connection) => connection.principal.tenant.id === payload);
        return;
      }
      if (channel !== 'fleet_access_changes') return;
      const [kind, first, second] = payload.split(':');
      if (kind === 'session') recheckAll(({ principal }) => principal.kind === 'member' && principal.sessionId === first);
      if (kind === 'membership') recheckAll(({ principal }) => principal.kind === 'member' && principal.userId === first && principal.tenant.id === second);
      // Demoting or removing a member revokes their keys above the new role (ApiKeyService.revokeCreatedBy).
      if (kind === 'apiKey') recheckAll(({ apiKeyPrefix }) => apiKeyPrefix === first);
    },
    onReset() {
      // Notifications may have been missed: check everyone.
      recheckAll(() => true);
    },
  };
  deps.notifications.subscribe(watcher);
  // The backstop: a notification lost without the LISTEN connection noticing, a token expiring.
  const periodic = setInterval(() => recheckAll(() => true), subscriptionLimits.recheckIntervalMs);
  periodic.unref();

  const format = (errors: readonly GraphQLError[]) => errors.map((error) => deps.formatError(error.toJSON(), error));

  async function documentOf(principal: TenantPrincipal, payload: SubscribePayload): Promise<string> {
    const hash = (payload.extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
    const hasText = payload.query.length > 0;
    if (principal.kind === 'apiKey' && principal.persistedOnly && (hasText || typeof hash !== 'string')) {
      throw new AppError(
        ErrorCode.PERSISTED_QUERY_REQUIRED,
        'This API key may only run registered operations: send extensions.persistedQuery.sha256Hash and an empty query',
      );
    }
    if (hasText) return payload.query;
    if (typeof hash !== 'string') throw new AppError(ErrorCode.BAD_REQUEST, 'Send a query, or the sha256Hash of a registered operation');
    const document = await services.safelist.lookup(principal.tenant.id, hash);
    if (!document) throw new AppError(ErrorCode.PERSISTED_QUERY_NOT_REGISTERED, 'No operation with this hash is registered for your tenant');
    return document;
  }

  /** The checks of the request path, in its order; the arguments to execute with, or what refuses them. */
  async function prepare(connection: Connection, payload: SubscribePayload): Promise<{ document: DocumentNode; variables: Record<string, unknown>; operation: OperationDefinitionNode; cost: number }> {
    if (typeof payload.operationName === 'string') assertSaneInput(payload.operationName, 'operationName');
    assertSaneInput(payload.variables, 'variables');
    assertSaneInput(payload.extensions, 'extensions');
    const text = await documentOf(connection.principal, payload);
    assertSaneInput(text, 'query');
    assertDocumentShape(text, limits);
    let document: DocumentNode;
    try {
      document = parse(text);
    } catch (error) {
      throw new AppError(ErrorCode.GRAPHQL_PARSE_FAILED, error instanceof GraphQLError ? error.message : 'The document does not parse');
    }
    const invalid = validate(schema, document, validationRules);
    if (invalid.length > 0) throw new Refused(invalid.map(validationError));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) throw new AppError(ErrorCode.OPERATION_RESOLUTION_FAILURE, 'Name the operation to run (operationName)');
    if (operation.operation !== 'subscription') {
      throw new AppError(ErrorCode.BAD_REQUEST, `Only subscriptions are served over WebSocket; send a ${operation.operation} over HTTP`);
    }
    const variables = payload.variables ?? {};
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 1 });
    if (coerced.errors) throw new Refused(coerced.errors.map((error) => new AppError(ErrorCode.BAD_USER_INPUT, error.message)));
    const cost = priceOperation(schema, { document, variables, operationName: payload.operationName }, limits.maxCost);
    if (deps.rateLimiter) {
      const subject = { kind: 'tenant', principal: connection.principal } as const;
      answerRateLimit(await deps.rateLimiter.take(subject, Math.max(1, Math.ceil(cost))), () => undefined, subject);
    }
    return { document, variables, operation, cost };
  }

  /** The policies of the root fields a subscription selects, for the checks while it runs. */
  function rootPolicies(operation: OperationDefinitionNode): AccessPolicy[] {
    const fields = schema.getSubscriptionType()?.getFields() ?? {};
    const policies: AccessPolicy[] = [];
    for (const selection of operation.selectionSet.selections) {
      const field = selection.kind === Kind.FIELD ? fields[selection.name.value] : undefined;
      const policy = field ? policyOfField(schema, field) : undefined;
      if (policy) policies.push(policy);
    }
    return policies;
  }

  serveGraphqlWs<Record<string, unknown>>(
    {
      schema,
      connectionInitWaitTimeout: subscriptionLimits.connectionInitTimeoutMs,
      onConnect: async (ctx) => {
        const { socket, request } = ctx.extra;
        if (closing) {
          socket.close(1001, 'Server shutting down');
          return false;
        }
        const headers = credentialHeaders(ctx.connectionParams, request.headers.host);
        if (!headers) {
          socket.close(CloseCode.Unauthorized, 'Unauthorized');
          return false;
        }
        let principal;
        try {
          principal = await deps.authenticator.authenticate(headers);
        } catch (error) {
          if (error instanceof AppError) {
            socket.close(error.code === ErrorCode.UNAUTHENTICATED ? CloseCode.Unauthorized : CloseCode.Forbidden, error.code === ErrorCode.UNAUTHENTICATED ? 'Unauthorized' : 'Forbidden');
          } else {
            logger.warn({ err: describeError(error) }, 'subscription connection could not be authenticated');
            socket.close(1013, 'Try again later');
          }
          return false;
        }
        if (principal.kind === 'anonymous') {
          socket.close(CloseCode.Unauthorized, 'Unauthorized');
          return false;
        }
        // Subscriptions act on a tenant; platform admins have none.
        if (!isTenantPrincipal(principal)) {
          socket.close(CloseCode.Forbidden, 'Forbidden');
          return false;
        }
        const tenantConnections = byTenant.get(principal.tenant.id) ?? new Set<Connection>();
        if (tenantConnections.size >= subscriptionLimits.connectionsPerTenant) {
          socket.close(1013, `Too many connections for this tenant (at most ${subscriptionLimits.connectionsPerTenant}); try again later`);
          return false;
        }
        if (socket.readyState !== socket.OPEN) return false;
        const token = /^Bearer\s+(\S+)$/i.exec(String(headers.authorization ?? ''))?.[1] ?? String(headers['x-api-key'] ?? '');
        const connection: Connection = {
          socket,
          headers,
          principal,
          apiKeyPrefix: /^fgk_([0-9a-f]{8})_/.exec(token)?.[1] ?? null,
          clientIp: request.socket.remoteAddress ?? 'unknown',
          operations: new Map(),
        };
        connections.set(socket, connection);
        tenantConnections.add(connection);
        byTenant.set(principal.tenant.id, tenantConnections);
        socket.once('close', () => forget(connection));
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = connections.get(ctx.extra.socket);
        if (!connection) return [new AppError(ErrorCode.UNAUTHENTICATED, 'This connection is closing')];
        // The subscription being started is already counted (graphql-ws reserves its id first).
        if (Object.keys(ctx.subscriptions).length > subscriptionLimits.perConnection) {
          return [
            new AppError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, `At most ${subscriptionLimits.perConnection} subscriptions per connection; complete one first, or open another connection`, {
              extensions: { limit: subscriptionLimits.perConnection },
            }),
          ];
        }
        let prepared;
        try {
          prepared = await prepare(connection, payload);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          if (error instanceof Refused) return error.errors;
          // As over HTTP: an outage says so, anything else is logged and masked.
          if (isDatabaseUnavailable(error)) {
            return [new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly', { extensions: { retryAfter: 1 } })];
          }
          logger.error({ err: describeError(error) }, 'subscription could not be prepared');
          return [new AppError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error', { extensions: { detail: 'An unexpected error occurred; it has been logged' } })];
        }
        const context = createRequestContext({
          requestId: randomUUID(),
          principal: connection.principal,
          prepaidPoints: prepared.cost,
          costKey: undefined,
          clientIp: connection.clientIp,
          services,
        });
        connection.operations.set(id, { policies: rootPolicies(prepared.operation), context });
        logger.info(
          { requestId: context.requestId, principal: connection.principal.kind, tenant: connection.principal.tenant.slug, operationName: prepared.operation.name?.value ?? null, cost: prepared.cost },
          'subscription started',
        );
        return {
          schema,
          document: prepared.document,
          variableValues: prepared.variables,
          operationName: payload.operationName ?? null,
          contextValue: context,
        };
      },
      onNext: (ctx, id, _payload, _args, result: ExecutionResult) => {
        // The event's answer is complete: its tenant lease goes back, the next event takes one afresh.
        connections.get(ctx.extra.socket)?.operations.get(id)?.context.release();
        return result.errors ? { ...result, errors: format(result.errors) } : undefined;
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
      onComplete: (ctx, id) => {
        const connection = connections.get(ctx.extra.socket);
        const operation = connection?.operations.get(id);
        if (!operation) return;
        operation.context.release();
        connection?.operations.delete(id);
        logger.info({ requestId: operation.context.requestId }, 'subscription ended');
      },
    },
    wsServer,
    logger,
  );

  return {
    connectionCount(tenantId) {
      return tenantId === undefined ? connections.size : (byTenant.get(tenantId)?.size ?? 0);
    },
    async close(graceMs) {
      if (closing) return;
      closing = true;
      clearInterval(periodic);
      const clients = [...wsServer.clients];
      for (const socket of clients) socket.close(1001, 'Server shutting down');
      // A client that does not answer the close frame is not waited for past the grace.
      const deadline = performance.now() + graceMs;
      while (clients.some((socket) => socket.readyState !== socket.CLOSED) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const socket of clients) if (socket.readyState !== socket.CLOSED) socket.terminate();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}

/** Several errors refusing one subscription (validation reports them all). */
class Refused extends Error {
  constructor(readonly errors: GraphQLError[]) {
    super('subscription refused');
  }
}

/** A validation error with its code: a limit's (depth, aliases), or GraphQL's own. */
function validationError(error: GraphQLError): AppError {
  const limitCode = error.extensions.limitCode;
  const code = typeof limitCode === 'string' && limitCode in ErrorCode ? (limitCode as ErrorCode) : ErrorCode.GRAPHQL_VALIDATION_FAILED;
  return new AppError(code, error.message);
}

/**
 * connectionParams as the headers HTTP would carry: `authorization` (`Bearer <access token or
 * API key>`), `x-api-key`, `x-tenant`, any case; the Host header of the upgrade request (a tenant's
 * host name). Null when a credential is not a string.
 */
function credentialHeaders(params: Readonly<Record<string, unknown>> | undefined, host: string | undefined): IncomingHttpHeaders | null {
  const headers: IncomingHttpHeaders = host ? { host } : {};
  for (const [key, value] of Object.entries(params ?? {})) {
    const name = key.toLowerCase() as (typeof CREDENTIAL_PARAMS)[number];
    if (!CREDENTIAL_PARAMS.includes(name)) continue;
    if (typeof value !== 'string') return null;
    headers[name] = value;
  }
  return headers;
}

/** What the client is told when its connection is closed: the cause in a few words, nothing more. */
function revocationReason(error: AppError, principal: TenantPrincipal): string {
  switch (error.code) {
    case ErrorCode.TENANT_SUSPENDED:
    case ErrorCode.TENANT_NOT_READY:
      return 'tenant suspended';
    case ErrorCode.FORBIDDEN:
      return 'role no longer allows this subscription';
    default:
      if (error.message === 'Access token expired') return 'access token expired';
      if (principal.kind === 'apiKey') return 'API key revoked';
      return /member/i.test(error.message) ? 'membership removed' : 'session revoked';
  }
}
