/*
 * Written by hand: a counting semaphore whose waiters are bounded in number and in time, with
 * the slot handed straight to the longest waiter. Small enough that a dependency would be
 * larger than it; the pieces general-purpose semaphores lack are the two bounds. Used for bcrypt
 * jobs (src/auth/password-jobs.ts) and for each tenant's operations in flight
 * (src/rate-limiting/tenant-in-flight.ts).
 */

/**
 * At most `slots` holders at once; beyond that at most `maxWaiting` callers wait, first come
 * first served, each for at most `waitMs`. Nothing here grows without bound: a caller is either
 * holding, waiting for a bounded time, or refused.
 */
export class BoundedAdmission {
  private held = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly maxWaiting: number,
    private readonly waitMs: number,
  ) {}

  /** True once a slot is held (give it back with release()); false when refused. */
  acquire(): Promise<boolean> {
    if (this.held < this.slots && this.waiters.length === 0) {
      this.held += 1;
      return Promise.resolve(true);
    }
    if (this.waitMs === 0 || this.waiters.length >= this.maxWaiting) return Promise.resolve(false);
    return new Promise((resolve) => {
      const admit = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(admit), 1);
        resolve(false);
      }, this.waitMs);
      this.waiters.push(admit);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    // The slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
    if (next) next();
    else this.held -= 1;
  }

  get holding(): number {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
