import { roleAtLeast } from '../auth/principal';
import { AppError, ErrorCode, forbidden, notFound } from '../errors/app-error';
import { parseInput } from '../fleet/fleet-input';
import type { TripNoteOrderField } from '../generated/graphql';
import { Prisma, type TripNote } from '../generated/prisma/tenant/client';
import type { ConnectionModel } from '../graphql/pagination';
import { changeRecord, createRecord, softDelete, type Actor, type RecordType } from '../records/record-changes';
import { readList, type ListArgs, type RecordList } from '../records/record-list';
import type { TenantSql } from '../tenancy/tenant-sql';
import { TenantTable } from '../tenancy/tenant-table';
import { noteSchema } from './stop-input';
import type { DispatchScope } from './trips';

/*
 * Notes on trips: anyone who works on trips (MEMBER+) writes them, whatever the trip's status.
 * Their author may correct one for a short while (NOTE_EDIT_WINDOW_MS) and no one else ever: a
 * note is a statement of who wrote it. Its author or an ADMIN+ deletes it (soft delete: kept, with
 * every edit, in its history).
 */

export const tripNoteTable = new TenantTable<TripNote>('TripNote', Object.values(Prisma.TripNoteScalarFieldEnum));
export const tripNoteRecord: RecordType<TripNote> = { name: 'TripNote', table: tripNoteTable, uniqueAmongLive: [] };

export const NOTE_EDIT_WINDOW_MS = 15 * 60 * 1000;

export const tripNoteList: RecordList<TripNote, { tripId: string }, TripNoteOrderField> = {
  table: tripNoteTable,
  softDeleted: true,
  conditions: (filter) => (filter ? [Prisma.sql`t."tripId" = ${filter.tripId}::uuid`] : []),
  // Each backed by a (tripId, column, id) index: notes are only ever listed per trip.
  orders: {
    CREATED_AT: { column: 'id' },
    UPDATED_AT: { column: 'updatedAt', kind: 'timestamp' },
  },
};

export function notesOfTrip(sql: TenantSql, tripId: string, args: Omit<ListArgs<never, TripNoteOrderField>, 'filter' | 'includeDeleted'>): Promise<ConnectionModel<TripNote>> {
  return readList(sql, tripNoteList, { ...args, filter: { tripId } });
}

export const editableUntil = (note: TripNote): Date => new Date(note.createdAt.getTime() + NOTE_EDIT_WINDOW_MS);

const isAuthor = (note: TripNote, actor: Actor) => note.authorKind === actor.actorKind && note.authorId === actor.actorId;

export async function addTripNote(scope: DispatchScope, input: { tripId: string; body: string }): Promise<TripNote> {
  const { body } = parseInput(noteSchema, input);
  const { actor } = scope;
  return createRecord(scope.db, tripNoteRecord, actor, async (tx) => {
    // FOR SHARE: the trip is not deleted while its note is written.
    const [trip] = await tx.$queryRaw<{ id: string }[]>`SELECT "id" FROM "Trip" WHERE "id" = ${input.tripId}::uuid AND "deletedAt" IS NULL FOR SHARE`;
    if (!trip) throw notFound('Trip');
    return tx.tripNote.create({ data: { tripId: input.tripId, body, authorKind: actor.actorKind, authorId: actor.actorId } });
    // The entry names the trip, so that the trip's subscribers hear of its notes (never the body).
  }, (note) => ({ action: 'tripNote.created', metadata: { tripId: note.tripId } }));
}

export async function editTripNote(scope: DispatchScope, input: { id: string; body: string; expectedVersion?: number | null }): Promise<TripNote> {
  const { body } = parseInput(noteSchema, input);
  const { actor } = scope;
  return changeRecord(scope.db, tripNoteRecord, input.id, { actor, expectedVersion: input.expectedVersion }, async (tx, note) => {
    if (!isAuthor(note, actor)) throw forbidden('Only its author edits a note');
    // The server's clock against the database's createdAt: both are this installation's, kept by NTP.
    const until = editableUntil(note);
    if (Date.now() > until.getTime()) {
      throw new AppError(ErrorCode.EDIT_WINDOW_CLOSED, `A note can be edited for ${NOTE_EDIT_WINDOW_MS / 60_000} minutes after it was written; this one until ${until.toISOString()}. Add another note instead`, {
        extensions: { editableUntil: until.toISOString() },
      });
    }
    return tx.tripNote.update({ where: { id: input.id }, data: { body, version: { increment: 1 } } });
  });
}

export async function deleteTripNote(scope: DispatchScope, id: string): Promise<void> {
  const { actor } = scope;
  await softDelete(scope.db, tripNoteRecord, id, {
    actor,
    beforeDelete: async (_tx, note) => {
      if (!isAuthor(note, actor) && !roleAtLeast(scope.principal.role, 'ADMIN')) throw forbidden("Only its author, or an ADMIN or OWNER, deletes a note");
    },
  });
}
