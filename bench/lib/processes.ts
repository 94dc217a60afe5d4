import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fetchServedCounts, type ServedCounts } from './statement-counts';

/*
 * Child processes: the load generators (bench/load.js, and bench/paced.js and bench/noise.js for
 * the noisy section) and the two baseline servers. Each runs
 * on its own event loop, so neither the load nor a baseline competes with the tenant server
 * for the bench process's loop (they do share the machine's cores: say so when quoting).
 */

const BENCH_DIR = path.resolve(__dirname, '..');
const running = new Set<ChildProcess>();

/** Children still alive (killed on SIGINT/SIGTERM by run.ts). */
export function killChildren(): void {
  for (const child of running) child.kill('SIGTERM');
}

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export interface LoadConfig {
  url: string;
  connections: number;
  durationSec: number;
  requests: { headers: Record<string, string>; body: string }[];
  /** A substring every successful response contains. */
  expect?: string;
}

export interface LoadResult {
  requests: number;
  durationSec: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  statusCodes: Record<string, { count: number }>;
}

export async function runLoad(config: LoadConfig): Promise<LoadResult> {
  return runJsonChild<LoadResult>('load.js', config);
}

/** bench/paced.js: requests due at a fixed rate, latency from when each was due. */
export interface PacedConfig {
  url: string;
  ratePerSecond: number;
  /** Keep-alive sockets the requests share (a request waits for a free one). */
  connections: number;
  /** Sent but not counted. */
  warmupSec: number;
  durationSec: number;
  timeoutSec: number;
  requests: LoadConfig['requests'];
  expect?: string;
}

export interface PacedResult extends LoadResult {
  /** Requests due in the measured window. */
  due: number;
  answered: number;
  /** First error code of each response that carried one (RATE_LIMITED, ...), counted. */
  codes: Record<string, number>;
}

export async function runPaced(config: PacedConfig): Promise<PacedResult> {
  return runJsonChild<PacedResult>('paced.js', config);
}

async function runJsonChild<T>(script: string, config: object): Promise<T> {
  const child = track(spawn(process.execPath, [path.join(BENCH_DIR, script), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${stderr.trim().slice(0, 500)}`);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

/** bench/noise.js: full speed until stopped; see that file for the placeholders. */
export interface NoiseConfig {
  url: string;
  connections: number;
  timeoutSec: number;
  /** It stops by itself after this long, whatever happens to the run. */
  maxDurationSec: number;
  requests: LoadConfig['requests'];
  /** What `{{ip}}` becomes: `<prefix>.<x>.<y>` over `count` addresses. */
  addresses?: { prefix: string; count: number };
  /**
   * The generator's scheduling priority (nice, 0 to 19). The noise's senders would not share the
   * server's machine in real life; on the bench machine they do, and a lower priority keeps the
   * generator's own CPU from counting against the tenant being measured when cores are scarce.
   */
  niceness: number;
}

export interface NoiseCounters {
  answered: number;
  /** "<HTTP status> <first error code in the body, or ok>" → responses. */
  outcomes: Record<string, number>;
  /** Connection errors and timeouts (timeouts are counted in both). */
  errors: number;
  timeouts: number;
}

export interface NoiseMark {
  atMs: number;
  counters: NoiseCounters;
}

export interface NoiseProcess {
  /** The counters now (the process answers on its standard output). */
  mark(label: string): Promise<NoiseMark>;
  /** Stops the noise; resolves once the process has exited, with its final counters. */
  stop(): Promise<{ durationSec: number; counters: NoiseCounters }>;
  /** CPU seconds the noise process has used so far. */
  cpuSeconds(): number;
}

export function startNoise(config: NoiseConfig): NoiseProcess {
  const { niceness, ...generatorConfig } = config;
  const child = track(spawn(process.execPath, [path.join(BENCH_DIR, 'noise.js'), JSON.stringify(generatorConfig)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  try {
    if (child.pid) os.setPriority(child.pid, niceness);
  } catch {
    // Not permitted here: it runs at normal priority, and its CPU time is reported either way.
  }
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const waiting: ((line: string) => void)[] = [];
  let finalLine: string | undefined;
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line.startsWith('{"final"')) finalLine = line;
    else waiting.shift()?.(line);
  });
  const failure = async (what: string) => new Error(`noise generator ${what} (exit ${await exited}): ${stderr.trim().slice(0, 500)}`);
  return {
    mark: (label) =>
      new Promise<NoiseMark>((resolve, reject) => {
        if (child.exitCode !== null) {
          void failure('is gone').then(reject);
          return;
        }
        waiting.push((line) => resolve(JSON.parse(line) as NoiseMark));
        child.stdin?.write(`mark ${label}\n`);
      }),
    stop: async () => {
      if (child.exitCode === null) child.stdin?.end('stop\n');
      const code = await exited;
      if (code !== 0 || !finalLine) throw await failure('failed');
      return JSON.parse(finalLine) as { durationSec: number; counters: NoiseCounters };
    },
    cpuSeconds: () => (child.exitCode === null && child.pid ? cpuSecondsOfProcess(child.pid) : Number.NaN),
  };
}

export interface ChildServer {
  url: string;
  /** CPU time (user + system) the server process has used so far, in seconds. */
  cpuSeconds(): number;
  /** Requests served and SQL statements sent so far (the server's GET /stats). */
  counts(): Promise<ServedCounts>;
  stop(): Promise<void>;
}

/** Linux's clock tick for /proc/<pid>/stat times (USER_HZ, 100 on every mainstream build). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU seconds of another process, from /proc (Linux). */
export function cpuSecondsOfProcess(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses): utime is the
  // 14th field and stime the 15th of the whole line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** User + system CPU seconds of this process (where the tenant server runs). */
export function cpuSecondsOfThisProcess(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Starts bench/<script> under tsx and waits for the {"url"} line it prints once listening. */
export async function startChildServer(script: string, options: object): Promise<ChildServer> {
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, script), JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: path.resolve(BENCH_DIR, '..'),
    }),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)));
    lines.once('line', (line) => {
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`${script} printed ${line}`));
      }
    });
  });
  return {
    url,
    cpuSeconds: () => cpuSecondsOfProcess(child.pid as number),
    counts: () => fetchServedCounts(url),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
