import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from './logger';

export interface OverloadOptions {
  /** Off: never sheds (the figures are still measured). */
  enabled: boolean;
  /** The event loop's p99 delay over one check above which the server is overloaded. */
  eventLoopDelayMs: number;
  /** The V8 heap's use, as a share of its limit, above which the server is overloaded. */
  heapRatio: number;
  /** How often the figures are read. */
  checkIntervalMs: number;
  /** How long shedding lasts after the last check that found the server overloaded. */
  holdMs: number;
}

export interface OverloadReading {
  eventLoopDelayMs: number;
  heapRatio: number;
  overloaded: boolean;
}

/**
 * Watches this process's event-loop delay and heap. Past either threshold the server is
 * "overloaded" for at least `holdMs`, and the request path sheds work (signed-out requests, the
 * most expensive operations) with 503 OVERLOADED and Retry-After, so that what is already
 * admitted, and the tenants asking little, still get through. Node reports the delay itself
 * (perf_hooks' histogram); what to do about it is the product's decision, hence by hand.
 */
export class OverloadMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly timer: NodeJS.Timeout;
  private overloadedUntil = 0;
  private lastCheckAt = performance.now();
  /** The state last logged, so that each change is logged once. */
  private reported = false;
  private last: OverloadReading = { eventLoopDelayMs: 0, heapRatio: 0, overloaded: false };
  private readonly shedCounts = new Map<string, number>();

  constructor(
    private readonly options: OverloadOptions,
    private readonly logger: Logger,
  ) {
    this.histogram.enable();
    this.timer = setInterval(() => this.check(), options.checkIntervalMs);
    this.timer.unref();
  }

  /** Whether to shed work now. */
  get overloaded(): boolean {
    return this.options.enabled && performance.now() < this.overloadedUntil;
  }

  reading(): OverloadReading {
    return { ...this.last, overloaded: this.overloaded };
  }

  /** Counts a request refused because of overload, by what it was (for metrics). */
  recordShed(reason: 'signed-out' | 'expensive'): void {
    this.shedCounts.set(reason, (this.shedCounts.get(reason) ?? 0) + 1);
  }

  shed(): ReadonlyMap<string, number> {
    return this.shedCounts;
  }

  /**
   * Forgets what was measured so far: called once the server listens, so that its own start-up
   * (building the schema, migrating, connecting), which stalls the loop before any request can
   * arrive, does not have it shed its first requests.
   */
  beginServing(): void {
    this.histogram.reset();
    this.lastCheckAt = performance.now();
    this.overloadedUntil = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private check(): void {
    const now = performance.now();
    // This check is itself a timer: how late it ran is the stall it sat behind, whether or not
    // the histogram's own timer has recorded that stall yet.
    const ownLateness = now - this.lastCheckAt - this.options.checkIntervalMs;
    this.lastCheckAt = now;
    const eventLoopDelayMs = Math.max(this.histogram.percentile(99) / 1e6, ownLateness);
    this.histogram.reset();
    const heap = getHeapStatistics();
    const heapRatio = heap.used_heap_size / heap.heap_size_limit;
    if (eventLoopDelayMs > this.options.eventLoopDelayMs || heapRatio > this.options.heapRatio) {
      this.overloadedUntil = now + this.options.holdMs;
    }
    const overloaded = this.overloaded;
    this.last = { eventLoopDelayMs, heapRatio, overloaded };
    if (overloaded !== this.reported) {
      this.reported = overloaded;
      const figures = { eventLoopDelayMs: Math.round(eventLoopDelayMs), heapRatio: Math.round(heapRatio * 100) / 100 };
      if (overloaded) this.logger.warn(figures, 'overloaded: shedding signed-out requests and the most expensive operations');
      else this.logger.info(figures, 'no longer overloaded: serving everything again');
    }
  }
}
