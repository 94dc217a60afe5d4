import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import { createHash } from 'node:crypto';
import { parse, validate, type GraphQLSchema } from 'graphql';
import { NotifiedCache } from '../database/notified-cache';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import { isUuid } from '../database/uuid';
import { AppError, ErrorCode, assertNoNul, badInput, notFound } from '../errors/app-error';
import type { PersistedOperation, TenantPlan } from '../generated/prisma/platform/client';
import { GLOBAL_PERSISTED_OPERATION_LIMITS, PERSISTED_OPERATION_LIMITS, type PersistedOperationLimits } from '../rate-limiting/plans';

/** A registered operation as lists and payloads carry it: never its document. */
export type PersistedOperationModel = Omit<PersistedOperation, 'document'>;

/** Columns of PersistedOperationModel: what lists select (the document stays in the database). */
const SUMMARY = { id: true, scope: true, tenantId: true, sha256: true, operationName: true, createdAt: true } as const;

/** Scope of operations a platform admin registers for every tenant. */
export const GLOBAL_SCOPE = 'global';
export const MAX_OPERATIONS_PER_CALL = 500;
export const MAX_DOCUMENT_BYTES = 20_000;
export const MAX_OPERATION_NAME_LENGTH = 200;
/**
 * Advisory-lock class under which registrations of one scope take turns (with hashtext(scope)),
 * so that two concurrent calls cannot both fit under the cap; see tenant-provisioner.ts for the
 * other classes.
 */
export const REGISTRATION_LOCK_CLASS = 0x46470003;

/** Whose operations: one tenant's (and its plan's cap), or the global ones. */
export type OperationScope = { tenantId: string; plan: TenantPlan } | { tenantId: null };

export interface OperationInput {
  /** sha256 of `body`, as in Apollo's persisted-query manifest; checked when given. */
  id?: string | null;
  name?: string | null;
  body: string;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const scopeKeyOf = (scope: OperationScope) => scope.tenantId ?? GLOBAL_SCOPE;

function limitsOf(scope: OperationScope): { limits: PersistedOperationLimits; whose: string } {
  return scope.tenantId === null
    ? { limits: GLOBAL_PERSISTED_OPERATION_LIMITS, whose: 'global operations' }
    : { limits: PERSISTED_OPERATION_LIMITS[scope.plan], whose: `a ${scope.plan} tenant` };
}

/**
 * Registered operations (a safelist) per tenant, plus global ones. A partner's persistedOnly
 * key may run only these; anyone in the tenant may run them by hash without sending the text.
 * Each scope holds at most its plan's count and bytes, checked under a lock per scope.
 *
 * Documents served by hash are cached by scope and hash. Removing an operation (or its tenant)
 * notifies every instance through the platform trigger, which drops it from the cache, so it
 * stops running by hash everywhere at once; while notifications are down the cache is bypassed.
 */
export class OperationSafelist implements NotificationSubscriber {
  private readonly found: NotifiedCache<string, string>;

  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      schema: () => GraphQLSchema;
      /**
       * The request guard's checks on a document's text (tokens, selections, fragments, ...;
       * throws an AppError): a registered document runs by hash without the guard ever seeing
       * its text, so registration is where those limits have to hold.
       */
      checkDocumentShape: (document: string) => void;
      notifications: PlatformNotifications | null;
    },
  ) {
    // Bounded by characters too: 10,000 documents of up to 20 KB would be 200 MB.
    this.found = new NotifiedCache(deps.notifications, { max: 10_000, maxSize: 32_000_000, sizeCalculation: (document) => Math.max(1, document.length) });
    deps.notifications?.subscribe(this);
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    if (channel !== 'fleet_access_changes' || !payload.startsWith('persistedOperation:')) return;
    this.found.delete(payload.slice('persistedOperation:'.length));
  }

  onReset(): void {
    this.found.clear();
  }

  /**
   * Validates every operation against the schema, then stores them (idempotent per hash), all
   * or none; QUOTA_EXCEEDED when the new ones would take the scope over its cap.
   */
  async register(scope: OperationScope, operations: OperationInput[], by: AuditActor): Promise<PersistedOperationModel[]> {
    if (operations.length === 0 || operations.length > MAX_OPERATIONS_PER_CALL) {
      throw badInput(`register 1 to ${MAX_OPERATIONS_PER_CALL} operations per call`, 'operations');
    }
    const prepared = new Map<string, { sha256: string; name: string | null; body: string }>();
    operations.forEach((operation, index) => {
      const ready = this.prepare(operation, index);
      if (!prepared.has(ready.sha256)) prepared.set(ready.sha256, ready);
    });
    const scopeKey = scopeKeyOf(scope);
    const hashes = [...prepared.keys()];
    return this.deps.platform.prisma.$transaction(async (tx) => {
      await lockScope(tx, scopeKey);
      const known = await tx.persistedOperation.findMany({ where: { scope: scopeKey, sha256: { in: hashes } }, select: { sha256: true } });
      const knownHashes = new Set(known.map((operation) => operation.sha256));
      const added = [...prepared.values()].filter((operation) => !knownHashes.has(operation.sha256));
      if (added.length > 0) {
        await assertWithinLimits(tx, scope, {
          operations: added.length,
          bytes: added.reduce((sum, operation) => sum + Buffer.byteLength(operation.body, 'utf8'), 0),
        });
        await tx.persistedOperation.createMany({
          data: added.map((operation) => ({
            scope: scopeKey,
            tenantId: scope.tenantId,
            sha256: operation.sha256,
            operationName: operation.name,
            document: operation.body,
          })),
        });
        if (scope.tenantId !== null) {
          await queueAudit(tx, scope.tenantId, by, {
            action: 'persistedOperations.registered',
            targetType: 'PersistedOperation',
            targetId: added.length === 1 ? (added[0]?.sha256 ?? '') : `${added.length} operations`,
            metadata: { sha256: added.slice(0, 20).map((operation) => operation.sha256), count: added.length },
          });
        }
      }
      return tx.persistedOperation.findMany({
        where: { scope: scopeKey, sha256: { in: hashes } },
        select: SUMMARY,
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
    });
  }

  /**
   * Removes these operations of the scope, all or none: NOT_FOUND if any id is not one of them
   * (another tenant's, a global one for a tenant, already removed). Returns the ids removed.
   */
  async remove(scope: OperationScope, ids: string[], by: AuditActor): Promise<string[]> {
    if (ids.length === 0 || ids.length > MAX_OPERATIONS_PER_CALL) {
      throw badInput(`remove 1 to ${MAX_OPERATIONS_PER_CALL} operations per call`, 'ids');
    }
    const wanted = [...new Set(ids.map((id) => id.toLowerCase()))];
    if (!wanted.every(isUuid)) throw notFound('Persisted operation');
    const scopeKey = scopeKeyOf(scope);
    const removed = await this.deps.platform.prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: string; sha256: string }[]>`
        DELETE FROM platform."PersistedOperation" WHERE "scope" = ${scopeKey} AND "id" = ANY(${wanted}::uuid[])
        RETURNING "id"::text AS "id", "sha256"`;
      // Throwing rolls the whole removal back.
      if (rows.length !== wanted.length) throw notFound('Persisted operation');
      if (scope.tenantId !== null) {
        await queueAudit(tx, scope.tenantId, by, {
          action: 'persistedOperations.removed',
          targetType: 'PersistedOperation',
          targetId: rows.length === 1 ? (rows[0]?.id ?? '') : `${rows.length} operations`,
          metadata: { ids: rows.slice(0, 20).map((row) => row.id), count: rows.length },
        });
      }
      return rows;
    });
    // Not waiting for our own notification: the next request here must already see it.
    this.found.delete(...removed.map((row) => `${scopeKey}:${row.sha256}`));
    return wanted;
  }

  /** The tenant's operations and the global ones, without documents (bounded by both caps). */
  list(tenantId: string): Promise<PersistedOperationModel[]> {
    return this.deps.platform.prisma.persistedOperation.findMany({
      where: { scope: { in: [tenantId, GLOBAL_SCOPE] } },
      select: SUMMARY,
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
  }

  /** The registered document with this hash for the tenant (or global), or null. */
  async lookup(tenantId: string, sha256: string): Promise<string | null> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
    const cached = this.found.get(`${tenantId}:${sha256}`) ?? this.found.get(`${GLOBAL_SCOPE}:${sha256}`);
    if (cached) return cached;
    const snapshot = this.found.snapshot();
    const operation = await this.deps.platform.prisma.persistedOperation.findFirst({
      where: { sha256, scope: { in: [tenantId, GLOBAL_SCOPE] } },
      select: { scope: true, document: true },
    });
    if (!operation) return null;
    // Under the scope it was found in, which is what a removal's notification names.
    this.found.set(`${operation.scope}:${sha256}`, operation.document, snapshot);
    return operation.document;
  }

  private prepare(operation: OperationInput, index: number): { sha256: string; name: string | null; body: string } {
    const field = `operations.${index}`;
    if (Buffer.byteLength(operation.body, 'utf8') > MAX_DOCUMENT_BYTES) {
      throw badInput(`${field}.body is larger than ${MAX_DOCUMENT_BYTES} bytes`, `${field}.body`);
    }
    // The GraphQL lexer accepts NUL in strings and comments; PostgreSQL text cannot store it.
    assertNoNul(operation.body, `${field}.body`);
    const sha256 = sha256Hex(operation.body);
    if (operation.id && operation.id !== sha256) {
      throw badInput(`${field}.id is not the sha256 of its body`, `${field}.id`);
    }
    try {
      this.deps.checkDocumentShape(operation.body);
    } catch (error) {
      throw badInput(`${field}.body is refused: ${(error as Error).message}`, `${field}.body`);
    }
    let errors: readonly { message: string }[];
    try {
      errors = validate(this.deps.schema(), parse(operation.body));
    } catch (error) {
      throw badInput(`${field}.body is not a GraphQL document: ${(error as Error).message}`, `${field}.body`);
    }
    if (errors.length > 0) {
      throw badInput(`${field}.body does not validate: ${errors.map((error) => error.message).join('; ')}`, `${field}.body`);
    }
    const name = operation.name?.trim() || null;
    if (name) {
      if (name.length > MAX_OPERATION_NAME_LENGTH) {
        throw badInput(`${field}.name must be at most ${MAX_OPERATION_NAME_LENGTH} characters`, `${field}.name`);
      }
      assertNoNul(name, `${field}.name`);
    }
    return { sha256, name, body: operation.body };
  }
}

/** Until the transaction ends, other registrations of the scope wait here. */
async function lockScope(tx: PlatformTransaction, scopeKey: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${REGISTRATION_LOCK_CLASS}::int, hashtext(${scopeKey}))`;
}

/** QUOTA_EXCEEDED, saying the cap and the usage, when `adding` would take the scope over its cap. */
async function assertWithinLimits(tx: PlatformTransaction, scope: OperationScope, adding: PersistedOperationLimits): Promise<void> {
  // octet_length reads a stored (TOASTed) document's size from its header, not the text itself.
  const [used = { operations: 0, bytes: 0 }] = await tx.$queryRaw<PersistedOperationLimits[]>`
    SELECT count(*)::int AS "operations", coalesce(sum(octet_length("document")), 0)::int AS "bytes"
    FROM platform."PersistedOperation" WHERE "scope" = ${scopeKeyOf(scope)}`;
  const { limits, whose } = limitsOf(scope);
  if (used.operations + adding.operations <= limits.operations && used.bytes + adding.bytes <= limits.bytes) return;
  throw new AppError(
    ErrorCode.QUOTA_EXCEEDED,
    `Registered operations are limited to ${limits.operations} operations and ${limits.bytes} bytes for ${whose}; ` +
      `${used.operations} operations (${used.bytes} bytes) are registered and this call adds ${adding.operations} (${adding.bytes} bytes). ` +
      `Remove operations no longer used first.`,
    { extensions: { field: 'operations' } },
  );
}
