/*
 * What an audit entry says, wherever it is written: the tenant's AuditEvent table inside a tenant
 * transaction (audit-log.ts), or the platform's outbox inside a platform transaction for changes
 * kept there (members, invitations, keys, persisted operations; audit-outbox.ts).
 */

export type AuditActorKind = 'USER' | 'API_KEY' | 'PLATFORM_ADMIN' | 'SYSTEM';

export interface AuditActor {
  actorKind: AuditActorKind;
  /** Null for the system's own jobs. */
  actorId: string | null;
  /** The request that made the change (its X-Request-Id); null for jobs. */
  requestId: string | null;
}

type MetadataValue = string | number | boolean | null | readonly MetadataValue[] | { readonly [key: string]: MetadataValue };
export type AuditMetadata = Readonly<Record<string, MetadataValue>>;

export interface AuditEntry {
  /** `<target>.<verb>`: `vehicle.created`, `trip.transitioned`, `member.removed`. */
  action: string;
  targetType: string;
  targetId: string;
  metadata?: AuditMetadata;
}

/** The row both tables store. */
export interface AuditRow {
  actorKind: AuditActorKind;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  requestId: string | null;
  metadata: AuditMetadata;
}

/**
 * Field names that carry or look like credentials. Metadata is written by our own code, so a
 * match is a programming error: the write fails (and with it the change it records) rather
 * than a secret landing in a log the tenant keeps for good.
 */
const SECRET_FIELD = /secret|passw|passcode|token|credential|private.?key|api.?key|signature|^code$|invitation.?code|^hash$|hashed/i;
/** An entry's metadata is a summary, not a copy of the record. */
const MAX_METADATA_BYTES = 4096;

export class AuditMetadataError extends Error {}

function assertNoSecretNames(value: MetadataValue, path: string): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item: MetadataValue, index) => assertNoSecretNames(item, `${path}[${index}]`));
    return;
  }
  for (const [key, inner] of Object.entries(value as Record<string, MetadataValue>)) {
    if (SECRET_FIELD.test(key)) throw new AuditMetadataError(`audit metadata may not hold a field named like a secret (${path}${key})`);
    assertNoSecretNames(inner, `${path}${key}.`);
  }
}

/** The row for `entry` by `actor`; throws AuditMetadataError for metadata that is not allowed. */
export function auditRow(actor: AuditActor, entry: AuditEntry): AuditRow {
  const metadata = entry.metadata ?? {};
  assertNoSecretNames(metadata, '');
  if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) {
    throw new AuditMetadataError(`audit metadata over ${MAX_METADATA_BYTES} bytes for ${entry.action}`);
  }
  return {
    actorKind: actor.actorKind,
    actorId: actor.actorId,
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId,
    requestId: actor.requestId,
    metadata,
  };
}

export const userActor = (userId: string, requestId: string | null): AuditActor => ({ actorKind: 'USER', actorId: userId, requestId });
