/*
 * Written by hand: a counting semaphore whose waiters are bounded in number and in time, with
 * slots handed straight to the longest waiters, and whose number of slots may change between
 * calls. Small enough that a dependency would be larger than it; the pieces general-purpose
 * semaphores lack are the two bounds and the moving limit. Used for bcrypt jobs
 * (src/auth/password-jobs.ts) and for each tenant's operations in flight
 * (src/rate-limiting/tenant-in-flight.ts).
 */

/**
 * At most `slots` holders at once; beyond that at most `maxWaiting` callers wait, first come
 * first served, each for at most `waitMs`. Nothing here grows without bound: a caller is either
 * holding, waiting for a bounded time, or refused.
 *
 * `slots` may be a function, read on every acquire and release: when it drops below the holders,
 * nobody is let in until enough have left; when it rises, the next release lets in as many
 * waiters as now fit.
 */
export class BoundedAdmission {
  private held = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly limit: () => number;

  constructor(
    slots: number | (() => number),
    private readonly maxWaiting: number,
    private readonly waitMs: number,
  ) {
    this.limit = typeof slots === 'number' ? () => slots : slots;
  }

  /** True once a slot is held (give it back with release()); false when refused. */
  acquire(): Promise<boolean> {
    if (this.waiters.length === 0 && this.held < this.limit()) {
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
    this.held -= 1;
    // Freed slots go straight to the waiters, in order, so a newcomer cannot overtake the queue.
    while (this.waiters.length > 0 && this.held < this.limit()) {
      this.held += 1;
      this.waiters.shift()?.();
    }
  }

  get holding(): number {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
