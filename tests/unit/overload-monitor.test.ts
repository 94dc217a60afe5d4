import pino from 'pino';
import { OverloadMonitor } from '../../src/observability/overload-monitor';

/*
 * The overload monitor forgets the server's own start-up: a stall measured before the server
 * listens (schema, migrations, connections) must not make it shed its first requests.
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function stallFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy on purpose: the event loop is what is being stalled.
  }
}

describe('OverloadMonitor', () => {
  it('sheds after a stall, and beginServing forgets a stall that came before serving', async () => {
    const monitor = new OverloadMonitor(
      { enabled: true, eventLoopDelayMs: 100, heapRatio: 0.99, checkIntervalMs: 20, holdMs: 10_000 },
      pino({ level: 'silent' }),
    );
    try {
      stallFor(300);
      await sleep(60);
      expect(monitor.overloaded).toBe(true);
      monitor.beginServing();
      expect(monitor.overloaded).toBe(false);
      await sleep(60);
      expect(monitor.overloaded).toBe(false);
      // A stall while serving still counts.
      stallFor(300);
      await sleep(60);
      expect(monitor.overloaded).toBe(true);
    } finally {
      monitor.close();
    }
  });
});
