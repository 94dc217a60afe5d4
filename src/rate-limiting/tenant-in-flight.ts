import { BoundedAdmission } from '../concurrency/bounded-admission';
import { AppError, ErrorCode } from '../errors/app-error';

export interface TenantInFlightOptions {
  /** Operations of one tenant running at once on this instance while other tenants are active. */
  maxInFlight: number;
  /** Operations of one tenant running at once while it is the only tenant active on this instance. */
  maxInFlightAlone: number;
  /** How long after its last operation another tenant still counts as active. */
  quietMs: number;
  /** Operations of one tenant waiting for a turn, beyond those running. */
  maxQueued: number;
  /** How long one waits for its turn before it is refused. */
  maxWaitMs: number;
}

interface LastSeen {
  tenantId: string;
  at: number;
}

/**
 * A cap on each tenant's operations in flight on this instance. Budgets (rate limits) bound how
 * much a tenant spends over time; this bounds how much of the server it holds at one moment, so
 * a tenant's heavy operations queue behind each other instead of in front of other tenants'.
 * Past the queue, or after the wait, the operation is refused RATE_LIMITED (429, retry in a
 * second): the tenant is asking faster than its share is served.
 *
 * The cap is work-conserving: a tenant alone on the instance (no other tenant with an operation
 * in flight, or finished within `quietMs`) may use the capacity nobody else wants, up to
 * `maxInFlightAlone`. As soon as another tenant shows up it is back to `maxInFlight`: the other
 * tenant gets its own turns at once, and the first one's queue waits until it is under its share
 * again (docs/decisions/0007-request-path.md).
 */
export class TenantInFlight {
  private readonly tenants = new Map<string, BoundedAdmission>();
  /**
   * The two most recently active distinct tenants, most recent first. Two suffice: whichever
   * tenant asks, the most recent other tenant is one of them.
   */
  private lastSeen: LastSeen[] = [];

  constructor(
    private readonly options: TenantInFlightOptions,
    /** Called for every operation refused (metrics). */
    private readonly onRefused?: () => void,
  ) {}

  /** A turn for one operation of `tenantId`; call the returned function once it is answered. */
  async acquire(tenantId: string, tenantSlug: string): Promise<() => void> {
    this.seen(tenantId);
    let admission = this.tenants.get(tenantId);
    if (!admission) {
      admission = new BoundedAdmission(() => this.limitOf(tenantId), this.options.maxQueued, this.options.maxWaitMs);
      this.tenants.set(tenantId, admission);
    }
    if (!(await admission.acquire())) {
      this.forgetIfIdle(tenantId, admission);
      this.onRefused?.();
      throw new AppError(
        ErrorCode.RATE_LIMITED,
        `Too many operations of ${tenantSlug} in flight (at most ${this.options.maxInFlight} at once while other tenants are active, ${this.options.maxQueued} waiting); retry in 1 s`,
        { extensions: { retryAfter: 1 }, httpStatus: 429 },
      );
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.seen(tenantId);
      admission.release();
      this.forgetIfIdle(tenantId, admission);
    };
  }

  /** Operations running and waiting, over every tenant (for metrics). */
  stats(): { tenants: number; running: number; waiting: number } {
    let running = 0;
    let waiting = 0;
    for (const admission of this.tenants.values()) {
      running += admission.holding;
      waiting += admission.waiting;
    }
    return { tenants: this.tenants.size, running, waiting };
  }

  private limitOf(tenantId: string): number {
    return this.isAlone(tenantId) ? this.options.maxInFlightAlone : this.options.maxInFlight;
  }

  private isAlone(tenantId: string): boolean {
    // Another tenant holding or waiting for turns right now.
    if (this.tenants.size > 1 || (this.tenants.size === 1 && !this.tenants.has(tenantId))) return false;
    const [latest, previous] = this.lastSeen;
    const other = latest?.tenantId === tenantId ? previous : latest;
    return !other || Date.now() - other.at >= this.options.quietMs;
  }

  private seen(tenantId: string): void {
    const now = Date.now();
    const [latest] = this.lastSeen;
    if (latest?.tenantId === tenantId) latest.at = now;
    else this.lastSeen = [{ tenantId, at: now }, ...this.lastSeen.filter((entry) => entry.tenantId !== tenantId)].slice(0, 2);
  }

  /** Idle tenants keep no entry, so the map is as large as the tenants busy right now. */
  private forgetIfIdle(tenantId: string, admission: BoundedAdmission): void {
    if (admission.holding === 0 && admission.waiting === 0 && this.tenants.get(tenantId) === admission) this.tenants.delete(tenantId);
  }
}
