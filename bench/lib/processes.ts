import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

/*
 * Child processes: the load generator (bench/load.js) and the two baseline servers. Each runs
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
  const child = track(spawn(process.execPath, [path.join(BENCH_DIR, 'load.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited with ${code}: ${stderr.trim().slice(0, 500)}`);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as LoadResult;
}

export interface ChildServer {
  url: string;
  /** CPU time (user + system) the server process has used so far, in seconds. */
  cpuSeconds(): number;
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
