import pino from 'pino';
import { Writable } from 'node:stream';
import { PlatformNotifications } from '../../src/database/platform-notifications';

/*
 * A listener whose server is gone retries every second; its log says so once per outage, not
 * once a try (a stopped tenant cluster filled the log with a line a second, naming the platform).
 * The server here is a port nothing listens on: a real refused connection.
 */
it('logs one warning per outage, naming whose notifications were lost, while it keeps retrying', async () => {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  const listener = new PlatformNotifications({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 500 }, pino({ level: 'info' }, sink), ['fleet_events'], "cluster east's event notifications");
  await expect(listener.start()).rejects.toThrow();
  // The first try, then at least two retries a second apart.
  await new Promise((resolve) => setTimeout(resolve, 2_600));
  await listener.close();
  const warnings = lines.filter((line) => line.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]?.msg).toContain("cluster east's event notifications lost");
  expect(listener.isListening()).toBe(false);
});
