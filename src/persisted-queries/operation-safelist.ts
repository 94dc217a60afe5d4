import { createHash } from 'node:crypto';
import { parse, validate, type GraphQLSchema } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { PlatformDatabase } from '../database/platform-database';
import { assertNoNul, badInput } from '../errors/app-error';
import type { PersistedOperation } from '../generated/prisma/platform/client';

export type PersistedOperationModel = PersistedOperation;

/** Scope of operations a platform admin registers for every tenant. */
export const GLOBAL_SCOPE = 'global';
export const MAX_OPERATIONS_PER_CALL = 500;
export const MAX_DOCUMENT_BYTES = 20_000;
export const MAX_OPERATION_NAME_LENGTH = 200;

export interface OperationInput {
  /** sha256 of `body`, as in Apollo's persisted-query manifest; checked when given. */
  id?: string | null;
  name?: string | null;
  body: string;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Registered operations (a safelist) per tenant, plus global ones. A partner's persistedOnly
 * key may run only these; anyone in the tenant may run them by hash without sending the text.
 * A hash names one document forever, so found documents are cached; unregistered hashes are not.
 */
export class OperationSafelist {
  private readonly found = new LRUCache<string, string>({ max: 10_000, ttl: 60_000 });

  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      schema: () => GraphQLSchema;
      /**
       * MAX_TOKENS: a registered document runs by hash without the request guard ever counting
       * its tokens, so registration is where the token limit has to hold.
       */
      maxTokens: number;
    },
  ) {}

  /** Validates every operation against the schema, then stores them (idempotent per hash). */
  async register(scope: { tenantId: string | null }, operations: OperationInput[]): Promise<PersistedOperationModel[]> {
    if (operations.length === 0 || operations.length > MAX_OPERATIONS_PER_CALL) {
      throw badInput(`register 1 to ${MAX_OPERATIONS_PER_CALL} operations per call`, 'operations');
    }
    const prepared = operations.map((operation, index) => this.prepare(operation, index));
    const scopeKey = scope.tenantId ?? GLOBAL_SCOPE;
    const { prisma } = this.deps.platform;
    await prisma.persistedOperation.createMany({
      data: prepared.map((operation) => ({
        scope: scopeKey,
        tenantId: scope.tenantId,
        sha256: operation.sha256,
        operationName: operation.name,
        document: operation.body,
      })),
      skipDuplicates: true,
    });
    return prisma.persistedOperation.findMany({
      where: { scope: scopeKey, sha256: { in: prepared.map((operation) => operation.sha256) } },
      orderBy: { createdAt: 'asc' },
    });
  }

  list(tenantId: string): Promise<PersistedOperationModel[]> {
    return this.deps.platform.prisma.persistedOperation.findMany({
      where: { scope: { in: [tenantId, GLOBAL_SCOPE] } },
      orderBy: { createdAt: 'asc' },
    });
  }

  /** The registered document with this hash for the tenant (or global), or null. */
  async lookup(tenantId: string, sha256: string): Promise<string | null> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
    const cacheKey = `${tenantId}:${sha256}`;
    const cached = this.found.get(cacheKey);
    if (cached) return cached;
    const operation = await this.deps.platform.prisma.persistedOperation.findFirst({
      where: { sha256, scope: { in: [tenantId, GLOBAL_SCOPE] } },
      select: { document: true },
    });
    if (!operation) return null;
    this.found.set(cacheKey, operation.document);
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
    let errors: readonly { message: string }[];
    try {
      errors = validate(this.deps.schema(), parse(operation.body, { maxTokens: this.deps.maxTokens }));
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
