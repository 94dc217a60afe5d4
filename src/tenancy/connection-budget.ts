import { AppError, ErrorCode } from '../errors/app-error';

/**
 * A cap on the PostgreSQL connections that all tenant pools together hold open. A permit is
 * taken before a tenant connection is opened and returned when it closes, so the cap holds
 * whatever the number of tenants.
 *
 * Written by hand because the permit must follow a physical connection's whole lifetime (not
 * one checkout), waiting must time out, and a waiter must be able to ask for idle connections
 * to be reclaimed: general-purpose semaphores offer the first, not the other two.
 */
export class ConnectionBudget {
  private held = 0;
  private readonly waiters: { grant: () => void; timer: NodeJS.Timeout }[] = [];
  /** Called when a waiter queues: close idle connections somewhere to free a permit. */
  onPressure: (() => void) | undefined;

  constructor(
    readonly limit: number,
    private readonly acquireTimeoutMs: number,
  ) {}

  get inUse(): number {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Whether a tenant may open a connection beyond its first: nobody waits and a quarter of the
   * budget (at least one) would still be free, for tenants that have no connection yet.
   */
  hasRoomToGrow(): boolean {
    return this.waiters.length === 0 && this.held < this.limit - Math.max(1, Math.floor(this.limit / 4));
  }

  acquire(): Promise<void> {
    if (this.held < this.limit) {
      this.held += 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(
            new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is busy; retry shortly', {
              extensions: { retryAfter: 1 },
            }),
          );
        }, this.acquireTimeoutMs),
      };
      this.waiters.push(waiter);
      this.onPressure?.();
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) {
      next.grant(); // the permit passes straight to the next waiter
    } else {
      this.held = Math.max(0, this.held - 1);
    }
  }
}
