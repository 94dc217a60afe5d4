import { randomInt, timingSafeEqual } from 'node:crypto';
import type { PlatformTransaction } from '../database/platform-database';
import type { AccountCodePurpose } from '../generated/prisma/platform/client';
import { AppError, ErrorCode } from '../errors/app-error';
import { hashSecret } from './secrets';

/*
 * One-time codes emailed to an account's own address: a password reset, an email verification.
 * People type them, so they are short (10 characters of an alphabet without look-alikes, ~50
 * bits); what keeps guessing out is that each code is one of a kind per account and purpose
 * (a new one replaces it), expires, and dies after MAX_CODE_ATTEMPTS wrong guesses, and that
 * asking for codes is rate-limited. Only the sha256 is stored (docs/decisions/0021-email.md).
 */

export const CODE_TTL_MS: Record<AccountCodePurpose, number> = {
  PASSWORD_RESET: 15 * 60 * 1000,
  EMAIL_VERIFICATION: 24 * 60 * 60 * 1000,
};

/** Wrong guesses an open code takes: the last of them voids it (the right code then fails too). */
export const MAX_CODE_ATTEMPTS = 5;

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 10;

export function newAccountCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i += 1) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** As people type it: any case, spaces or dashes anywhere. */
const normalized = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

const hashOf = (code: string) => hashSecret(normalized(code));

export const invalidCode = () => new AppError(ErrorCode.INVALID_CODE, 'Invalid or expired code', { extensions: { field: 'code' } });

/** Stores a new code for the account and purpose (voiding any earlier one); returns the code, for the email only. */
export async function issueAccountCode(tx: Pick<PlatformTransaction, 'accountCode'>, userId: string, purpose: AccountCodePurpose): Promise<string> {
  const code = newAccountCode();
  const fields = { codeHash: hashOf(code), attempts: 0, createdAt: new Date(), expiresAt: new Date(Date.now() + CODE_TTL_MS[purpose]) };
  await tx.accountCode.upsert({
    where: { userId_purpose: { userId, purpose } },
    create: { userId, purpose, ...fields },
    update: fields,
  });
  return code;
}

/**
 * Checks `code` against the account's open code under a row lock: the right one is deleted
 * (spent) and true returned; a wrong one counts an attempt (the last allowed one voids the code)
 * and false is returned, so the caller must commit before refusing or the count is lost.
 * Expired or absent codes answer false too, alike.
 */
export async function spendAccountCode(tx: PlatformTransaction, userId: string, purpose: AccountCodePurpose, code: string): Promise<boolean> {
  const [open] = await tx.$queryRaw<{ id: string; codeHash: string; attempts: number; expiresAt: Date }[]>`
    SELECT "id", "codeHash", "attempts", "expiresAt" FROM platform."AccountCode"
    WHERE "userId" = ${userId}::uuid AND "purpose" = ${purpose}::platform."AccountCodePurpose" FOR UPDATE`;
  if (!open) return false;
  if (open.expiresAt.getTime() <= Date.now()) {
    await tx.accountCode.delete({ where: { id: open.id } });
    return false;
  }
  const presented = Buffer.from(hashOf(code), 'hex');
  const stored = Buffer.from(open.codeHash, 'hex');
  if (presented.length === stored.length && timingSafeEqual(presented, stored)) {
    await tx.accountCode.delete({ where: { id: open.id } });
    return true;
  }
  if (open.attempts + 1 >= MAX_CODE_ATTEMPTS) await tx.accountCode.delete({ where: { id: open.id } });
  else await tx.accountCode.update({ where: { id: open.id }, data: { attempts: { increment: 1 } } });
  return false;
}
