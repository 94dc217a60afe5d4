import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';

/*
 * Runs inside a worker thread of PasswordJobs (piscina), never on the event loop. The
 * synchronous bcrypt calls are deliberate: the thread has nothing else to do, and the async
 * ones only add yields that slow it down.
 */

/*
 * bcrypt yields the cores to everything else: a flood of logins slows logins, not every
 * tenant's requests (measured with the bench's noisy section: on two cores, a login flood put
 * another tenant's p99 at 4x without this, under 2x with it). On Linux, setpriority of "0" is the
 * calling thread only, so the event loop's thread keeps its priority; elsewhere it may not be
 * allowed, which costs nothing but the priority.
 */
try {
  setPriority(0, 19);
} catch {
  // not permitted here: bcrypt runs at normal priority
}

export type PasswordTask = { kind: 'hash'; password: string; rounds: number } | { kind: 'compare'; password: string; hash: string };

export interface PasswordTaskResult {
  value: string | boolean;
  /** Time the thread spent on bcrypt, which is what the queue's retryAfter is estimated from. */
  runMs: number;
}

// piscina calls the default export (and looks for it when the thread starts).
export default function runPasswordTask(task: PasswordTask): PasswordTaskResult {
  const startedAt = performance.now();
  const value = task.kind === 'hash' ? bcrypt.hashSync(task.password, task.rounds) : bcrypt.compareSync(task.password, task.hash);
  return { value, runMs: performance.now() - startedAt };
}
