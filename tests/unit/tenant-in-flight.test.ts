import { TenantInFlight } from '../../src/rate-limiting/tenant-in-flight';

/*
 * The work-conserving cap on a tenant's operations in flight: alone, a tenant may take up to
 * `maxInFlightAlone`; while another tenant has been active within `quietMs`, `maxInFlight`.
 * (tests/integration/fair-share.test.ts shows the same over HTTP.)
 */

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function inFlight(quietMs: number): TenantInFlight {
  return new TenantInFlight({ maxInFlight: 1, maxInFlightAlone: 3, quietMs, maxQueued: 10, maxWaitMs: 60_000 });
}

describe('TenantInFlight', () => {
  it('gives a tenant alone up to maxInFlightAlone turns, then queues', async () => {
    const caps = inFlight(1_000);
    const releases = await Promise.all([caps.acquire('a', 'a'), caps.acquire('a', 'a'), caps.acquire('a', 'a')]);
    const fourth = caps.acquire('a', 'a');
    await settle();
    expect(caps.stats()).toEqual({ tenants: 1, running: 3, waiting: 1 });
    for (const release of releases) release();
    (await fourth)();
    expect(caps.stats()).toEqual({ tenants: 0, running: 0, waiting: 0 });
  });

  it('holds a tenant to its share while another tenant is running, and until quietMs after the other finished', async () => {
    const caps = inFlight(60);
    const releaseB = await caps.acquire('b', 'b');
    const releaseA = await caps.acquire('a', 'a');
    let secondA = false;
    const waitingA = caps.acquire('a', 'a').then((release) => {
      secondA = true;
      return release;
    });
    await settle();
    expect({ stats: caps.stats(), secondA }).toEqual({ stats: { tenants: 2, running: 2, waiting: 1 }, secondA: false });
    releaseB();
    // B is idle but was active a moment ago: A's waiter still waits for A's own turn.
    const third = caps.acquire('a', 'a');
    await settle();
    expect({ stats: caps.stats(), secondA }).toEqual({ stats: { tenants: 1, running: 1, waiting: 2 }, secondA: false });
    // Once B has been quiet for quietMs, A's next release lets in every waiter that fits its cap alone.
    await sleep(80);
    releaseA();
    const [second, thirdRelease] = await Promise.all([waitingA, third]);
    expect(caps.stats()).toEqual({ tenants: 1, running: 2, waiting: 0 });
    second();
    thirdRelease();
    expect(caps.stats()).toEqual({ tenants: 0, running: 0, waiting: 0 });
  });

  it('tells a third tenant apart: the most recent other tenant is remembered whichever tenant asks', async () => {
    const caps = inFlight(1_000);
    (await caps.acquire('c', 'c'))();
    (await caps.acquire('b', 'b'))();
    (await caps.acquire('a', 'a'))();
    // a and b are the two most recent; for b, a is the other, recent: b is held to its share.
    const releaseB = await caps.acquire('b', 'b');
    const refusedOrWaiting = caps.acquire('b', 'b');
    await settle();
    expect(caps.stats()).toEqual({ tenants: 1, running: 1, waiting: 1 });
    releaseB();
    (await refusedOrWaiting)();
  });
});
