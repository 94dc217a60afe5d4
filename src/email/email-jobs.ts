import { CODE_TTL_MS, issueAccountCode } from '../auth/account-codes';
import { hashSecret } from '../auth/secrets';
import type { PlatformDatabase, PlatformTransaction } from '../database/platform-database';
import type { JobQueue, QueueSpec } from '../jobs/job-queue';
import type { Logger } from '../observability/logger';
import { invitationEmail, passwordResetEmail, verificationEmail } from './email-templates';
import type { Mailer } from './mailer';

/*
 * Account emails are jobs on the `send-email` queue, sent INSIDE the transaction of the change
 * that causes them: an invitation's email exists if and only if the invitation committed, and a
 * relay that is down only delays it (pg-boss retries with backoff). What a job holds:
 *   - an invitation: the address, the tenant's name, the role and the code (the inviting
 *     transaction minted it and stored its hash); the job is deleted as soon as the mail is
 *     accepted by the relay, so the code sits in the job table only until then;
 *   - a password reset: the address typed, nothing else. The job looks the account up, mints the
 *     code and stores its hash: the request answers the same, in the same time, whether or not
 *     the address has an account, and no code is ever in the job table;
 *   - an email verification: the user's id; the job mints the code the same way.
 * docs/decisions/0021-email.md.
 */

export const SEND_EMAIL_QUEUE = 'send-email';

export type EmailJob =
  | { template: 'invitation'; invitationId: string; to: string; tenantName: string; role: string; code: string; expiresAt: string }
  | { template: 'password-reset'; email: string }
  | { template: 'email-verification'; userId: string };

/** Retries over about an hour and a half (pg-boss doubles the delay each time). */
export function sendEmailQueue(retryDelaySeconds: number): QueueSpec {
  return { name: SEND_EMAIL_QUEUE, policy: 'standard', retryLimit: 9, retryDelaySeconds, expireInSeconds: 120 };
}

/** How the services ask for an email. */
export class EmailOutbox {
  constructor(private readonly jobs: JobQueue) {}

  /** In `tx`: the email goes if and only if `tx` commits. Call `wake()` once it has. */
  async enqueue(tx: PlatformTransaction, job: EmailJob): Promise<void> {
    await this.jobs.send(SEND_EMAIL_QUEUE, job, { tx });
  }

  /** Outside any transaction (nothing to commit with it). */
  async enqueueNow(job: EmailJob): Promise<void> {
    await this.jobs.send(SEND_EMAIL_QUEUE, job);
  }

  wake(): void {
    this.jobs.wake(SEND_EMAIL_QUEUE);
  }
}

/** The worker side: renders and sends one job's email, minting the code first where the job holds none. */
export class EmailJobHandler {
  constructor(private readonly deps: { platform: PlatformDatabase; mailer: Mailer; logger: Logger }) {}

  /** Throws when the relay refused or was unreachable (the queue logs the error's class, never the job's data, and retries). */
  async handle(job: EmailJob): Promise<void> {
    const { prisma } = this.deps.platform;
    switch (job.template) {
      case 'invitation': {
        // Replaced (a newer code), taken up or revoked since: this code opens nothing, send nothing.
        const open = await prisma.invitation.findFirst({
          where: { id: job.invitationId, codeHash: hashSecret(job.code), expiresAt: { gt: new Date() } },
          select: { id: true },
        });
        if (!open) return;
        const hasAccount = (await prisma.user.findUnique({ where: { email: job.to }, select: { id: true } })) !== null;
        await this.deps.mailer.send(invitationEmail({ ...job, expiresAt: new Date(job.expiresAt), hasAccount }));
        return;
      }
      case 'password-reset': {
        const user = await prisma.user.findUnique({ where: { email: job.email }, select: { id: true, email: true } });
        // No account, no email: telling a stranger's inbox that nobody has an account there helps nobody.
        if (!user) return;
        // A retry mints another code; only the last one sent works, and it is in the last email.
        const code = await issueAccountCode(prisma, user.id, 'PASSWORD_RESET');
        await this.deps.mailer.send(passwordResetEmail({ to: user.email, code, validMinutes: CODE_TTL_MS.PASSWORD_RESET / 60_000 }));
        return;
      }
      case 'email-verification': {
        const user = await prisma.user.findUnique({ where: { id: job.userId }, select: { id: true, email: true, emailVerifiedAt: true } });
        if (!user || user.emailVerifiedAt) return;
        const code = await issueAccountCode(prisma, user.id, 'EMAIL_VERIFICATION');
        await this.deps.mailer.send(verificationEmail({ to: user.email, code, validHours: CODE_TTL_MS.EMAIL_VERIFICATION / 3_600_000 }));
        return;
      }
    }
  }
}
