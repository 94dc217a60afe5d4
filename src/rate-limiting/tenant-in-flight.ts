import { BoundedAdmission } from '../concurrency/bounded-admission';
import { AppError, ErrorCode } from '../errors/app-error';

export interface TenantInFlightOptions {
  /** Operations of one tenant running at once on this instance. */
  maxInFlight: number;
  /** Operations of one tenant waiting for a turn, beyond those running. */
  maxQueued: number;
  /** How long one waits for its turn before it is refused. */
  maxWaitMs: number;
}

/**
 * A cap on each tenant's operations in flight on this instance. Budgets (rate limits) bound how
 * much a tenant spends over time; this bounds how much of the server it holds at one moment, so
 * a tenant's heavy operations queue behind each other instead of in front of other tenants'.
 * Past the queue, or after the wait, the operation is refused RATE_LIMITED (429, retry in a
 * second): the tenant is asking faster than its share is served.
 */
export class TenantInFlight {
  private readonly tenants = new Map<string, BoundedAdmission>();

  constructor(private readonly options: TenantInFlightOptions) {}

  /** A turn for one operation of `tenantId`; call the returned function once it is answered. */
  async acquire(tenantId: string, tenantSlug: string): Promise<() => void> {
    let admission = this.tenants.get(tenantId);
    if (!admission) {
      admission = new BoundedAdmission(this.options.maxInFlight, this.options.maxQueued, this.options.maxWaitMs);
      this.tenants.set(tenantId, admission);
    }
    if (!(await admission.acquire())) {
      this.forgetIfIdle(tenantId, admission);
      throw new AppError(
        ErrorCode.RATE_LIMITED,
        `Too many operations of ${tenantSlug} in flight (at most ${this.options.maxInFlight} at once, ${this.options.maxQueued} waiting); retry in 1 s`,
        { extensions: { retryAfter: 1 }, httpStatus: 429 },
      );
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
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

  /** Idle tenants keep no entry, so the map is as large as the tenants busy right now. */
  private forgetIfIdle(tenantId: string, admission: BoundedAdmission): void {
    if (admission.holding === 0 && admission.waiting === 0 && this.tenants.get(tenantId) === admission) this.tenants.delete(tenantId);
  }
}
