import type { BenchContext } from './context';
import { runLoad, type LoadConfig, type LoadResult } from './processes';
import { list, median, ms, rps } from './stats';

/*
 * Rounds of load against one or more targets, interleaved (A B C, B C A, C A B, ...) so that a
 * noisy moment on the machine hits every target alike; each target is warmed up first. The table
 * shows the median over rounds of each round's throughput and percentiles.
 */

/**
 * Called just before a measured round (never around warm-ups); what it returns is called just
 * after the round and says what moved meanwhile.
 */
export type Observer = () => Promise<() => Promise<Record<string, number>>>;

export interface Target {
  name: string;
  config: Omit<LoadConfig, 'durationSec' | 'connections'>;
  /** Observations around each round (e.g. tenant clients built, connections opened). */
  observe?: Observer;
  /** CPU seconds the serving process has used so far: read around each round. */
  cpuSeconds?: () => number;
}

export interface TargetRounds {
  name: string;
  rounds: LoadResult[];
  observations: Record<string, number>[];
  /** Per round: the serving process's CPU time per completed request, in µs. */
  cpuMicrosPerRequest: number[];
}

export interface Summary {
  rps: number;
  p50: number;
  p99: number;
  failures: number;
  /** Median over rounds; NaN when the target's CPU time is not known. */
  cpuMicrosPerRequest: number;
}

/**
 * The target with one more observer, run inside the ones it has (started last, finished
 * first, so it brackets the round most closely); the observations are merged.
 */
export function observedBy(target: Target, observer: Observer): Target {
  const outer = target.observe;
  return {
    ...target,
    observe: async () => {
      const finishOuter = outer ? await outer() : null;
      const finish = await observer();
      return async () => {
        const observed = await finish();
        return { ...(finishOuter ? await finishOuter() : {}), ...observed };
      };
    },
  };
}

/** Sums one observation over a target's rounds. */
export function totalObserved(target: TargetRounds, key: string): number {
  return target.observations.reduce((sum, observed) => sum + (observed[key] ?? 0), 0);
}

export function failuresOf(result: LoadResult): number {
  return result.non2xx + result.errors + result.timeouts + result.mismatches;
}

export function summarize(target: TargetRounds): Summary {
  return {
    rps: median(target.rounds.map((round) => round.rps)),
    p50: median(target.rounds.map((round) => round.latencyMs.p50)),
    p99: median(target.rounds.map((round) => round.latencyMs.p99)),
    failures: target.rounds.reduce((sum, round) => sum + failuresOf(round), 0),
    cpuMicrosPerRequest: target.cpuMicrosPerRequest.length ? median(target.cpuMicrosPerRequest) : Number.NaN,
  };
}

export function describeRounds(target: TargetRounds): string {
  const summary = summarize(target);
  const failures = summary.failures > 0 ? ` · **${summary.failures} failed responses**` : '';
  const cpu = Number.isNaN(summary.cpuMicrosPerRequest) ? '' : ` · server CPU ${Math.round(summary.cpuMicrosPerRequest)} µs/request`;
  return `p50 ${ms(summary.p50)} · p99 ${ms(summary.p99)}${cpu} · rounds ${list(target.rounds.map((round) => round.rps), (value) => rps(value).replace(' req/s', ''))} req/s${failures}`;
}

export async function loadRounds(ctx: BenchContext, targets: Target[]): Promise<TargetRounds[]> {
  const { counts } = ctx;
  const results: TargetRounds[] = targets.map((target) => ({ name: target.name, rounds: [], observations: [], cpuMicrosPerRequest: [] }));
  for (const target of targets) {
    ctx.progress(`warm-up: ${target.name} (${counts.warmupSec} s)`);
    await runLoad({ ...target.config, connections: counts.connections, durationSec: counts.warmupSec });
  }
  for (let round = 1; round <= counts.rounds; round += 1) {
    // Each round starts with another target, so that none always follows the same one (the raw
    // SQL target leaves PostgreSQL busier than the others do).
    const order = targets.map((_, position) => (position + round - 1) % targets.length);
    for (const index of order) {
      const target = targets[index] as Target;
      const finish = target.observe ? await target.observe() : null;
      const cpuBefore = target.cpuSeconds?.();
      const result = await runLoad({ ...target.config, connections: counts.connections, durationSec: counts.durationSec });
      const cpuAfter = target.cpuSeconds?.();
      const observed = finish ? await finish() : {};
      const entry = results[index] as TargetRounds;
      entry.rounds.push(result);
      entry.observations.push(observed);
      if (cpuBefore !== undefined && cpuAfter !== undefined && result.requests > 0) {
        entry.cpuMicrosPerRequest.push(((cpuAfter - cpuBefore) * 1e6) / result.requests);
      }
      const failures = failuresOf(result);
      ctx.progress(
        `round ${round}/${counts.rounds} ${target.name}: ${rps(result.rps)}, p50 ${ms(result.latencyMs.p50)}, p99 ${ms(result.latencyMs.p99)}` +
          (failures ? `, ${failures} FAILED (${JSON.stringify(result.statusCodes)})` : '') +
          (Object.keys(observed).length ? `, ${Object.entries(observed).map(([key, value]) => `${key} ${value}`).join(', ')}` : ''),
      );
    }
  }
  return results;
}
