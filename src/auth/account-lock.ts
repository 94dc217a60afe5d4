import type { PlatformTransaction } from '../database/platform-database';
import { Prisma } from '../generated/prisma/platform/client';
import { AppError, ErrorCode, badInput } from '../errors/app-error';

/** A tenant user's account or a platform admin's. */
export type AccountRef = { userId: string } | { adminId: string };

/*
 * Everything that changes a password, starts a session on one, or deletes an account takes the
 * account's row lock first, and nothing takes another of its rows before it: so they serialise on
 * that row, always in the same order (no deadlocks). FOR UPDATE to change or delete the account,
 * FOR SHARE to rely on its password staying what was checked.
 */

const accountTable = (account: AccountRef) =>
  'userId' in account ? Prisma.sql`platform."User" WHERE "id" = ${account.userId}::uuid` : Prisma.sql`platform."PlatformAdmin" WHERE "id" = ${account.adminId}::uuid`;

/** Locks the account's row and reads its password hash; null when the account is gone. */
export async function lockAccount(tx: PlatformTransaction, account: AccountRef, mode: 'UPDATE' | 'SHARE'): Promise<string | null> {
  const lock = mode === 'UPDATE' ? Prisma.sql`FOR UPDATE` : Prisma.sql`FOR SHARE`;
  const [row] = await tx.$queryRaw<{ passwordHash: string }[]>`SELECT "passwordHash" FROM ${accountTable(account)} ${lock}`;
  return row?.passwordHash ?? null;
}

/**
 * Replaces the password of the caller's account, whose hash was `checkedHash` when the caller
 * proved the current password, and ends its other sessions; returns their ids (for the session
 * cache, once committed). Under the row lock it checks again that the hash is still that one and
 * that the caller's session is still live: of two concurrent changes only one wins, and a session
 * revoked while the new password was being hashed cannot set it.
 */
export async function replacePassword(
  tx: PlatformTransaction,
  caller: { account: AccountRef; sessionId: string },
  change: { checkedHash: string; newHash: string; reason: string; accountGone: () => AppError },
): Promise<string[]> {
  const { account, sessionId } = caller;
  const current = await lockAccount(tx, account, 'UPDATE');
  if (current === null) throw change.accountGone();
  if (current !== change.checkedHash) throw badInput('currentPassword is not your current password', 'currentPassword');
  const session = await tx.session.findUnique({ where: { id: sessionId }, select: { revokedAt: true } });
  if (!session || session.revokedAt) throw new AppError(ErrorCode.UNAUTHENTICATED, 'Session has ended', { httpStatus: 401 });
  if ('userId' in account) await tx.user.update({ where: { id: account.userId }, data: { passwordHash: change.newHash } });
  else await tx.platformAdmin.update({ where: { id: account.adminId }, data: { passwordHash: change.newHash } });
  const others = await tx.session.findMany({
    where: { ...account, revokedAt: null, NOT: { id: sessionId } },
    select: { id: true },
  });
  await tx.session.updateMany({
    where: { id: { in: others.map((other) => other.id) } },
    data: { revokedAt: new Date(), revokedReason: change.reason },
  });
  return others.map((other) => other.id);
}
