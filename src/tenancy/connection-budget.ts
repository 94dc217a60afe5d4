import { AppError, ErrorCode } from '../errors/app-error';

/** Longest a waiter queues before busy tenants, not only idle ones, must give up connections. */
const FAIR_SHARE_MAX_MS = 100;

interface Waiter {
  grant: () => void;
  since: number;
  timer: NodeJS.Timeout;
  nudge: NodeJS.Timeout;
}

/**
 * A cap on the PostgreSQL connections that all tenant pools together hold open. A permit is
 * taken before a tenant connection is opened and returned when it closes, so the cap holds
 * whatever the number of tenants.
 *
 * Written by hand because the permit must follow a physical connection's whole lifetime (not
 * one checkout), waiting must time out, and the pools must hear of waiters to close idle
 * connections for them: general-purpose semaphores offer the first, not the other two.
 */
export class ConnectionBudget {
  private held = 0;
  private readonly waiters: Waiter[] = [];
  /** Since start (metrics): acquisitions that had to queue, and those of them that timed out. */
  private waitCount = 0;
  private timeoutCount = 0;
  /**
   * After this long in the queue, a waiter is owed a connection even by tenants still serving a
   * request (between two statements): before, only tenants with nothing in flight give theirs
   * up, so a request's statements keep their connection instead of reconnecting each time.
   */
  readonly fairShareMs: number;
  /**
   * Called when a waiter queues, and again once it has waited fairShareMs: close idle
   * connections somewhere to free a permit.
   */
  onPressure: (() => void) | undefined;

  constructor(
    readonly limit: number,
    private readonly acquireTimeoutMs: number,
  ) {
    this.fairShareMs = Math.min(FAIR_SHARE_MAX_MS, Math.floor(acquireTimeoutMs / 4));
  }

  get inUse(): number {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Acquisitions that queued since start, and how many of them timed out. */
  get waits(): { all: number; timedOut: number } {
    return { all: this.waitCount, timedOut: this.timeoutCount };
  }

  /** How long the first waiter in the queue has waited, in ms (0 when nobody waits). */
  longestWaitMs(): number {
    const first = this.waiters[0];
    return first ? performance.now() - first.since : 0;
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
    this.waitCount += 1;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          clearTimeout(waiter.nudge);
          resolve();
        },
        since: performance.now(),
        timer: setTimeout(() => {
          clearTimeout(waiter.nudge);
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          this.timeoutCount += 1;
          reject(
            new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is busy; retry shortly', {
              extensions: { retryAfter: 1 },
            }),
          );
        }, this.acquireTimeoutMs),
        nudge: setTimeout(() => this.onPressure?.(), this.fairShareMs),
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
