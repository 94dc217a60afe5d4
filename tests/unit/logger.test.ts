import { spawn } from 'node:child_process';
import path from 'node:path';

/*
 * The production logger writes standard output in chunks (pino's asynchronous destination), not
 * a write per line. Run in a real child process: what it printed is what a log collector reads.
 */

const LOGGER = path.resolve(__dirname, '../../src/observability/logger.ts');

interface Run {
  lines: { msg: string; at: number }[];
  exitCode: number | null;
}

/** Runs `script` (with `createLogger` in scope as `log`) and timestamps each line as it arrives. */
async function runWithLogger(script: string): Promise<Run> {
  const program = `const { createLogger } = require(${JSON.stringify(LOGGER)}); const log = createLogger('info'); ${script}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', program], { stdio: ['ignore', 'pipe', 'ignore'] });
  const startedAt = Date.now();
  const lines: Run['lines'] = [];
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const line of complete) lines.push({ msg: (JSON.parse(line) as { msg: string }).msg, at: Date.now() - startedAt });
  });
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { lines, exitCode };
}

describe('the production logger', () => {
  it('loses no line when the process exits right after logging, however many', async () => {
    const run = await runWithLogger(`for (let i = 0; i < 500; i += 1) log.info('line ' + i); process.exit(3);`);
    expect(run.exitCode).toBe(3);
    expect(run.lines.map((line) => line.msg)).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
  });

  it('loses no line when the process dies of an uncaught exception', async () => {
    const run = await runWithLogger(`log.info('before'); setTimeout(() => { log.info('last words'); throw new Error('boom'); }, 10);`);
    expect(run.exitCode).not.toBe(0);
    expect(run.lines.map((line) => line.msg)).toEqual(['before', 'last words']);
  });

  it('writes a lone line within about a second, while the process goes on', async () => {
    const run = await runWithLogger(`log.info('lone'); setTimeout(() => { log.info('later'); process.exit(0); }, 2500);`);
    expect(run.lines.map((line) => line.msg)).toEqual(['lone', 'later']);
    const [lone, later] = run.lines as [Run['lines'][number], Run['lines'][number]];
    // Seen well before the process moved on: flushed by the timer, not at exit.
    expect(later.at - lone.at).toBeGreaterThan(800);
  });
});
