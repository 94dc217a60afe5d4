import { badInput } from '../errors/app-error';
import { isCanonicalUuid } from '../database/uuid';

/*
 * Relay global ids: base64url("<Type>:<uuid>"). Opaque to clients, and they carry the type, so
 * node(id:) knows which table to look in.
 */

export type NodeType = 'Vehicle' | 'Driver' | 'Trip' | 'MaintenanceRecord' | 'Stop' | 'TripNote';

const NODE_TYPES: ReadonlySet<string> = new Set<NodeType>(['Vehicle', 'Driver', 'Trip', 'MaintenanceRecord', 'Stop', 'TripNote']);

export function toGlobalId(type: NodeType, id: string): string {
  return Buffer.from(`${type}:${id}`, 'utf8').toString('base64url');
}

/** The type and row id behind a global id, or null when it is not one of ours. */
export function parseGlobalId(globalId: string): { type: NodeType; id: string } | null {
  if (globalId.length > 100 || !/^[A-Za-z0-9_-]+$/.test(globalId)) return null;
  const [type, id, ...rest] = Buffer.from(globalId, 'base64url').toString('utf8').split(':');
  if (rest.length > 0 || !type || !id || !NODE_TYPES.has(type) || !isCanonicalUuid(id)) return null;
  return { type: type as NodeType, id };
}

/** The row id behind a global id of the expected type; BAD_USER_INPUT otherwise. */
export function expectGlobalId(globalId: string, type: NodeType, field = 'id'): string {
  const parsed = parseGlobalId(globalId);
  if (!parsed || parsed.type !== type) throw badInput(`${field} is not a ${type} id`, field);
  return parsed.id;
}

/**
 * An optional id argument: absent or null stays so (no filter, or "unset" in an update); any
 * string, the empty one included, must be an id of `type`.
 */
export function optionalGlobalId<Absent extends null | undefined>(globalId: string | Absent, type: NodeType, field: string): string | Absent {
  return globalId === null || globalId === undefined ? globalId : expectGlobalId(globalId, type, field);
}
