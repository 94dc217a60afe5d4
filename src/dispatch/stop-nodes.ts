import type { Stop, TripNote } from '../generated/prisma/tenant/client';
import type { TenantSql } from '../tenancy/tenant-sql';
import { tripNoteTable } from './trip-notes';
import { stopTable } from './trip-stops';

/** node(id) for a stop or a note: the live row, tagged with its type; null if none (or deleted). */
export async function liveStopOrNote(
  sql: TenantSql,
  type: 'Stop' | 'TripNote',
  id: string,
): Promise<(Stop & { __typename: 'Stop' }) | (TripNote & { __typename: 'TripNote' }) | null> {
  if (type === 'Stop') {
    const [stop] = await stopTable.whereIn(sql, 'id', [id]);
    return stop && stop.deletedAt === null ? { ...stop, __typename: 'Stop' as const } : null;
  }
  const [note] = await tripNoteTable.whereIn(sql, 'id', [id]);
  return note && note.deletedAt === null ? { ...note, __typename: 'TripNote' as const } : null;
}
