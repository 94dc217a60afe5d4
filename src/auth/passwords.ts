import { badInput } from '../errors/app-error';
import { PasswordJobs, type PasswordJobsOptions, type PasswordJobStats } from './password-jobs';

/** bcrypt only looks at a password's first 72 bytes; longer ones are refused, not truncated. */
const MAX_PASSWORD_BYTES = 72;
const MIN_PASSWORD_LENGTH = 8;

/*
 * bcrypt sees bytes, and only the first 72: a password of NUL characters hashes like the empty
 * one, and a 100-byte password like its first 72 bytes. Both are refused when set, and never
 * match when presented (a 72-byte password followed by anything is not that password).
 */
const bcryptSeesAll = (password: string) => !password.includes('\u0000') && Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES;

export function assertAcceptablePassword(password: string, field = 'password'): void {
  if (password.includes('\u0000')) throw badInput(`${field} must not contain NUL characters`, field);
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw badInput(`${field} must be at least ${MIN_PASSWORD_LENGTH} characters`, field);
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw badInput(`${field} must be at most ${MAX_PASSWORD_BYTES} bytes`, field);
  }
}

/**
 * bcrypt for every password anyone sets or presents. The work runs on worker threads behind a
 * bounded queue (PasswordJobs): when it is full, the operation fails with RATE_LIMITED.
 */
export class PasswordHasher {
  private readonly jobs: PasswordJobs;
  /** Compared against when the account does not exist, so both paths cost one bcrypt. */
  private decoy: Promise<string> | undefined;

  constructor(
    private readonly rounds: number,
    jobs: PasswordJobsOptions,
  ) {
    this.jobs = new PasswordJobs(jobs);
    this.decoyHash().catch(() => undefined);
  }

  hash(password: string): Promise<string> {
    return this.jobs.hash(password, this.rounds);
  }

  /**
   * The hash of a new password for an account whose hash is `currentHash`, once the caller
   * proved they know the current password (a session alone is not enough to set one).
   */
  async hashChange(currentHash: string, input: { currentPassword: string; newPassword: string }): Promise<string> {
    if (!(await this.verify(input.currentPassword, currentHash))) {
      throw badInput('currentPassword is not your current password', 'currentPassword');
    }
    assertAcceptablePassword(input.newPassword, 'newPassword');
    if (input.newPassword === input.currentPassword) throw badInput('newPassword must differ from the current one', 'newPassword');
    return this.hash(input.newPassword);
  }

  async verify(password: string, hash: string | null | undefined): Promise<boolean> {
    if (!hash || !bcryptSeesAll(password)) {
      await this.jobs.compare(password, await this.decoyHash());
      return false;
    }
    return this.jobs.compare(password, hash);
  }

  stats(): PasswordJobStats {
    return this.jobs.stats();
  }

  close(): Promise<void> {
    return this.jobs.close();
  }

  /** Made once; made again on next use if making it failed (the queue was full, say). */
  private decoyHash(): Promise<string> {
    if (!this.decoy) {
      const made = this.hash('decoy-password-for-timing');
      made.catch(() => {
        if (this.decoy === made) this.decoy = undefined;
      });
      this.decoy = made;
    }
    return this.decoy;
  }
}
