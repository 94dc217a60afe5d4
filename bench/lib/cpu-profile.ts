import { writeFileSync } from 'node:fs';
import type { Profiler, Runtime } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Observer } from './load-rounds';

/*
 * `--profile <file>`: a CPU profile of the bench process, where the tenant server runs, taken
 * with the V8 sampling profiler through node:inspector only while the tenant server's own
 * measured rounds run (an Observer: Profiler.start before a round, Profiler.stop after it; never
 * during warm-ups or the baselines' rounds). Starting a recording stalls the event loop for a few
 * hundred milliseconds (V8 lists every compiled function first), so the caller's afterStart hook
 * lets the server recover, and each recording is cut to the round itself: the samples between
 * the end of afterStart and the round's end. (V8 stamps samples with the monotonic clock that
 * process.hrtime reads; each recording checks that.) The file joins the rounds into one
 * .cpuprofile (call trees merged by call path, samples end to end, the time between rounds
 * left out), which Chrome DevTools (Performance, "Load profile") and speedscope open. Self time
 * is summed by category of the sampled frame's script: a package under node_modules, a folder
 * of src/, Node's own modules, wasm, and V8's pseudo-frames ((garbage collector), (program):
 * native code outside JavaScript, (idle): the event loop waiting).
 */

/** 1 ms, as `node --cpu-prof`: ~1,000 samples per second of round, little overhead. */
const SAMPLING_INTERVAL_US = 1000;

/** Self time of a category (or a function), in ms. */
export interface SelfTime {
  name: string;
  ms: number;
  /** Of all the profiled time, idle included. */
  share: number;
}

interface Recording {
  label: string;
  profile: Profiler.Profile;
}

export class CpuProfiler {
  private session: Session | null = null;
  private readonly recordings: Recording[] = [];

  constructor(private readonly projectRoot: string) {}

  /**
   * Records the rounds it observes under `label` (e.g. which query was loaded). `afterStart`
   * runs once the recording has started, before the round does.
   */
  observer(label: string, afterStart: () => Promise<void> = async () => undefined): Observer {
    return async () => {
      const session = await this.connected();
      const starting = monotonicMicros();
      await session.post('Profiler.start');
      const started = monotonicMicros();
      await afterStart();
      const from = monotonicMicros();
      return async () => {
        const to = monotonicMicros();
        const { profile } = await session.post('Profiler.stop');
        // Up to a millisecond of slack for the conversions to whole microseconds.
        if (profile.startTime < starting - 1000 || profile.startTime > started + 1000) {
          throw new Error(`the CPU profile's clock is not process.hrtime's (started at ${profile.startTime} µs, between ${starting} and ${started} by hrtime): cannot cut it to the round`);
        }
        const round = cut(profile, from, to);
        this.recordings.push({ label, profile: round });
        return { 'profile samples': round.samples?.length ?? 0 };
      };
    };
  }

  get labels(): string[] {
    return [...new Set(this.recordings.map((recording) => recording.label))];
  }

  /** Self time by category over the rounds recorded under `label`. */
  byCategory(label: string): SelfTime[] {
    return selfTimeByCategory(this.profiles(label), this.projectRoot);
  }

  /** Self time by function over the rounds recorded under `label`. */
  byFunction(label: string): SelfTime[] {
    return selfTimeByFunction(this.profiles(label), this.projectRoot);
  }

  /** Writes every recorded round as one .cpuprofile; false when nothing was recorded. */
  write(file: string): boolean {
    if (this.recordings.length === 0) return false;
    writeFileSync(file, JSON.stringify(mergeProfiles(this.recordings.map((recording) => recording.profile))));
    return true;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = null;
    if (!session) return;
    await session.post('Profiler.disable').catch(() => undefined); // also stops a recording a failed round left running
    session.disconnect();
  }

  private profiles(label: string): Profiler.Profile[] {
    return this.recordings.filter((recording) => recording.label === label).map((recording) => recording.profile);
  }

  private async connected(): Promise<Session> {
    if (!this.session) {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      // Only takes effect for recordings started after it.
      await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
      this.session = session;
    }
    return this.session;
  }
}

/**
 * What a frame's own time is charged to: the package for code under node_modules (scoped
 * packages as @scope/name), `src/<folder>` for the product's code (`src` for its top-level
 * files), the top folder for the rest of the project (bench, tests), `node internals` for
 * Node's own modules (`node:` urls), V8's pseudo-frames by their own names. Null for native
 * functions (no script: a socket's writev, runMicrotasks): they are charged to their caller.
 */
export function categoryOf(frame: Runtime.CallFrame, projectRoot: string): string | null {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : null;
  if (url.startsWith('wasm://')) return 'wasm';
  if (!url.startsWith('file://') && !path.isAbsolute(url)) return 'node internals'; // node:internal/..., node:http
  const file = url.startsWith('file://') ? fileURLToPath(url.split('?')[0] as string) : url;
  const marker = `${path.sep}node_modules${path.sep}`;
  const modules = file.lastIndexOf(marker);
  if (modules >= 0) {
    const [scope, name] = file.slice(modules + marker.length).split(path.sep);
    return scope?.startsWith('@') ? `${scope}/${name ?? ''}` : (scope ?? 'node_modules');
  }
  const relative = path.relative(projectRoot, file);
  if (relative.startsWith('..') || path.isAbsolute(relative)) return 'other scripts';
  const [top, folder, rest] = relative.split(path.sep);
  if (top === 'src') return rest === undefined ? 'src' : `src/${folder}`;
  return top ?? 'other scripts';
}

/** The node no other node names as a child (V8 lists it first; this does not rely on that). */
function rootOf(profile: Profiler.Profile): Profiler.ProfileNode {
  const children = new Set(profile.nodes.flatMap((node) => node.children ?? []));
  const root = profile.nodes.find((node) => !children.has(node.id));
  if (!root) throw new Error('CPU profile without a root node');
  return root;
}

/** Each node with its parent, root first (parents always before their children). */
function walk(profile: Profiler.Profile): { node: Profiler.ProfileNode; parent: Profiler.ProfileNode | null }[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const visited: { node: Profiler.ProfileNode; parent: Profiler.ProfileNode | null }[] = [];
  const pending: { node: Profiler.ProfileNode; parent: Profiler.ProfileNode | null }[] = [{ node: rootOf(profile), parent: null }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    visited.push(next);
    const parent = next.node;
    for (const childId of parent.children ?? []) {
      const node = byId.get(childId);
      if (node) pending.push({ node, parent });
    }
  }
  return visited;
}

function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Each sample with the time it stands for: the time since the previous sample (timeDeltas),
 * so an uneven interval (a long GC pause) weighs what it lasted.
 */
function* timedSamples(profile: Profiler.Profile): Generator<{ nodeId: number; us: number }> {
  const deltas = profile.timeDeltas ?? [];
  for (const [index, nodeId] of (profile.samples ?? []).entries()) yield { nodeId, us: deltas[index] ?? 0 };
}

/** The recording from `from` to `to` (µs, the profile's clock): the samples taken in between. */
function cut(profile: Profiler.Profile, from: number, to: number): Profiler.Profile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let at = profile.startTime;
  let previous = from;
  for (const { nodeId, us } of timedSamples(profile)) {
    at += us;
    if (at < from || at > to) continue;
    samples.push(nodeId);
    timeDeltas.push(at - previous);
    previous = at;
  }
  return { nodes: profile.nodes, startTime: from, endTime: to, samples, timeDeltas };
}

/** Where a node's self time goes: its category, and the nearest code of a package or of the project on its stack. */
interface Charge {
  category: string;
  /** The closest caller that is not Node's own code (a socket write made for pg: pg). */
  on: string | undefined;
}

/** Self time (ms) per key, where keyOf names a node given what it is charged to. */
function selfTime(profiles: Profiler.Profile[], projectRoot: string, keyOf: (node: Profiler.ProfileNode, charge: Charge) => string): SelfTime[] {
  const totals = new Map<string, number>();
  for (const profile of profiles) {
    const keys = new Map<number, string>();
    const charges = new Map<number, Charge>();
    for (const { node, parent } of walk(profile)) {
      const caller = parent ? charges.get(parent.id) : undefined;
      const category = categoryOf(node.callFrame, projectRoot) ?? caller?.category ?? '(native)';
      const charge = { category, on: category === 'node internals' || category.startsWith('(') ? caller?.on : category };
      charges.set(node.id, charge);
      keys.set(node.id, keyOf(node, charge));
    }
    for (const { nodeId, us } of timedSamples(profile)) {
      const key = keys.get(nodeId) ?? '(unknown)';
      totals.set(key, (totals.get(key) ?? 0) + us / 1000);
    }
  }
  const all = [...totals.values()].reduce((sum, value) => sum + value, 0);
  return [...totals.entries()]
    .map(([name, ms]) => ({ name, ms, share: all > 0 ? ms / all : Number.NaN }))
    .sort((a, b) => b.ms - a.ms);
}

/** Self time per category (see categoryOf), largest first. */
export function selfTimeByCategory(profiles: Profiler.Profile[], projectRoot: string): SelfTime[] {
  return selfTime(profiles, projectRoot, (_node, { category }) => category);
}

/**
 * Self time per function, largest first: "writev (node internals ← pg)" for Node's code
 * working for a package, "name (category)" otherwise, V8's pseudo-frames by name.
 */
export function selfTimeByFunction(profiles: Profiler.Profile[], projectRoot: string): SelfTime[] {
  return selfTime(profiles, projectRoot, (node, { category, on }) => {
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === category) return name;
    return `${name} (${category}${on && on !== category ? ` ← ${on}` : ''})`;
  });
}

/** "@prisma/client 31.0% · (garbage collector) 9.2% · ..." for the top `count` entries. */
export function describeBreakdown(entries: SelfTime[], count: number): string {
  const shown = entries.slice(0, count).map((entry) => `${entry.name} ${(100 * entry.share).toFixed(1)}%`);
  const rest = entries.slice(count).reduce((sum, entry) => sum + entry.share, 0);
  return [...shown, ...(rest > 0 ? [`other ${(100 * rest).toFixed(1)}%`] : [])].join(' · ');
}

function frameKey(frame: Runtime.CallFrame): string {
  return [frame.functionName, frame.url, frame.scriptId, frame.lineNumber, frame.columnNumber].join('\u0000');
}

/**
 * One profile from several recordings of the same process: nodes with the same call path
 * become one, and the samples follow each other with their deltas (each recording's first
 * counts from that recording's start), so the time between recordings is left out instead of
 * being charged to a sample.
 */
export function mergeProfiles(profiles: Profiler.Profile[]): Profiler.Profile {
  const nodes: Profiler.ProfileNode[] = [];
  const byPath = new Map<string, Profiler.ProfileNode>();
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  for (const profile of profiles) {
    const mergedId = new Map<number, number>();
    for (const { node: source, parent } of walk(profile)) {
      const parentId = parent ? (mergedId.get(parent.id) ?? 0) : 0;
      const key = `${parentId}\u0001${frameKey(source.callFrame)}`;
      let node = byPath.get(key);
      if (!node) {
        node = { id: nodes.length + 1, callFrame: source.callFrame, hitCount: 0, children: [] };
        nodes.push(node);
        byPath.set(key, node);
        if (parentId > 0) nodes[parentId - 1]?.children?.push(node.id);
      }
      mergedId.set(source.id, node.id);
    }
    for (const { nodeId, us } of timedSamples(profile)) {
      const id = mergedId.get(nodeId) ?? 1;
      const node = nodes[id - 1] as Profiler.ProfileNode;
      node.hitCount = (node.hitCount ?? 0) + 1;
      samples.push(id);
      timeDeltas.push(us);
    }
  }
  const startTime = profiles[0]?.startTime ?? 0;
  return { nodes, startTime, endTime: startTime + timeDeltas.reduce((sum, delta) => sum + delta, 0), samples, timeDeltas };
}
