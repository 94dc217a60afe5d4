import { createHash } from 'node:crypto';
import type { PlatformDatabase } from '../database/platform-database';
import type { EmailOutbox } from '../email/email-jobs';
import { AppError, ErrorCode } from '../errors/app-error';
import type { Logger } from '../observability/logger';
import { describeError } from '../observability/logger';
import type { TokenBucketStore, BucketLimits } from '../rate-limiting/token-buckets';
import type { RedisFailurePolicy } from '../rate-limiting/request-rate-limiter';
import { invalidCode, spendAccountCode } from './account-codes';
import { lockAccount } from './account-lock';
import { parseEmail } from './person-input';
import { assertAcceptablePassword, type PasswordHasher } from './passwords';
import type { MemberPrincipal } from './principal';
import type { SessionStateCache } from './session-state-cache';

/**
 * What an account does through its mailbox: a forgotten password reset by an emailed code, and
 * the address proven by one (docs/decisions/0021-email.md).
 */

/** Reset emails one address may be sent: 3 at once, then one per 10 minutes (against mailbox flooding). */
export const RESET_REQUESTS_PER_EMAIL: BucketLimits = { capacity: 3, refillPerSecond: 1 / 600 };

export class AccountEmailService {
  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      passwords: PasswordHasher;
      sessionCache: SessionStateCache;
      outbox: EmailOutbox;
      /** Per-address limits (Redis when there is one, shared by instances). */
      buckets: TokenBucketStore;
      failurePolicy: RedisFailurePolicy;
      /** Keeps installations sharing one Redis apart. */
      namespace: string;
      logger: Logger;
    },
  ) {}

  /**
   * Queues a reset email for `email`. The same answer, after the same work (a bucket and a job
   * insert), whether or not the address has an account: the job finds out, mints the code and
   * sends it, or sends nothing.
   */
  async requestPasswordReset(rawEmail: string): Promise<void> {
    const email = parseEmail(rawEmail);
    await this.takeResetRequest(email);
    await this.deps.outbox.enqueueNow({ template: 'password-reset', email });
  }

  /**
   * Sets the password of `email`'s account when `code` is its open reset code, spends the code,
   * marks the address verified (the code came through it) and signs out every session of the
   * account. Any refusal about the code, including an address with no account, is INVALID_CODE.
   */
  async resetPassword(input: { email: string; code: string; newPassword: string }): Promise<{ signedOutSessions: number }> {
    assertAcceptablePassword(input.newPassword, 'newPassword');
    // Hashed before the account is even looked up, so both answers cost one bcrypt.
    const passwordHash = await this.deps.passwords.hash(input.newPassword);
    const email = input.email.trim().toLowerCase();
    const { prisma } = this.deps.platform;
    const user = email.includes('\u0000') ? null : await prisma.user.findUnique({ where: { email }, select: { id: true } });
    if (!user) throw invalidCode();
    const outcome = await prisma.$transaction(async (tx) => {
      // The account's row first, as every password change takes it (account-lock.ts).
      if ((await lockAccount(tx, { userId: user.id }, 'UPDATE')) === null) return null;
      if (!(await spendAccountCode(tx, user.id, 'PASSWORD_RESET', input.code))) return null;
      await tx.user.update({ where: { id: user.id }, data: { passwordHash } });
      await tx.user.updateMany({ where: { id: user.id, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date() } });
      const live = await tx.session.findMany({ where: { userId: user.id, revokedAt: null }, select: { id: true } });
      await tx.session.updateMany({ where: { id: { in: live.map((session) => session.id) } }, data: { revokedAt: new Date(), revokedReason: 'password reset' } });
      return live.map((session) => session.id);
    });
    // Committed either way: a wrong code's attempt counts.
    if (outcome === null) throw invalidCode();
    for (const sessionId of outcome) this.deps.sessionCache.invalidateSession(sessionId);
    return { signedOutSessions: outcome.length };
  }

  /** Proves the caller's address with the code emailed to it. */
  async verifyEmail(actor: MemberPrincipal, code: string): Promise<void> {
    const verified = await this.deps.platform.prisma.$transaction(async (tx) => {
      if (!(await spendAccountCode(tx, actor.userId, 'EMAIL_VERIFICATION', code))) return false;
      await tx.user.updateMany({ where: { id: actor.userId, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date() } });
      return true;
    });
    if (!verified) throw invalidCode();
  }

  /** Emails the caller a new verification code (voiding the last one); nothing when already verified. */
  async sendEmailVerification(actor: MemberPrincipal): Promise<boolean> {
    const user = await this.deps.platform.prisma.user.findUnique({ where: { id: actor.userId }, select: { emailVerifiedAt: true } });
    if (!user) throw new AppError(ErrorCode.UNAUTHENTICATED, 'Account no longer exists', { httpStatus: 401 });
    if (user.emailVerifiedAt) return false;
    await this.deps.outbox.enqueueNow({ template: 'email-verification', userId: actor.userId });
    return true;
  }

  private async takeResetRequest(email: string): Promise<void> {
    // Hashed: Redis keys should not collect email addresses. One hash tag: one cluster slot.
    const key = `rl:{e:${this.deps.namespace}:${createHash('sha256').update(email).digest('hex').slice(0, 32)}}:password-reset`;
    let taken;
    try {
      taken = await this.deps.buckets.take([key], [RESET_REQUESTS_PER_EMAIL], 1);
    } catch (error) {
      this.deps.logger.warn({ err: describeError(error) }, 'password-reset limit unavailable');
      if (this.deps.failurePolicy === 'open') return;
      throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'Rate limiting is unavailable; retry shortly', { extensions: { retryAfter: 1 } });
    }
    if (!taken.allowed) {
      const retryAfter = Math.max(1, Math.ceil(taken.retryAfterSeconds));
      throw new AppError(ErrorCode.RATE_LIMITED, `Too many password resets asked for this email; retry in ${retryAfter} s`, {
        extensions: { retryAfter },
        httpStatus: 429,
      });
    }
  }
}
