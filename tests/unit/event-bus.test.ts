import type { DomainEvent } from '../../src/events/domain-event';
import { InProcessEventBus, LISTENER_QUEUE_MAX, parseMessage, serializeMessage, tenantChannel } from '../../src/subscriptions/event-bus';
import { EventQueue } from '../../src/subscriptions/event-queue';

/* The bus's wire format, its per-tenant fan-out in one process, and the bounded queue of a listener. */

const event = (tenantId: string): DomainEvent => ({
  id: '0193a5c4-7d1e-7b2a-9c41-2f7e1d0b9a11',
  tenantId,
  type: 'TRIP_LATE',
  occurredAt: new Date('2026-12-04T10:11:12.345Z'),
  subject: { type: 'Trip', id: '0193a5c4-8e02-72c4-b1f3-6a9d0e5c7b22' },
  actor: { kind: 'SYSTEM', id: null },
  data: { plannedArrivalAt: '2026-12-04T09:00:00.000Z' },
});

describe('wire format', () => {
  it('round-trips an event, occurredAt back to a Date', () => {
    const parsed = parseMessage(serializeMessage({ kind: 'event', event: event('t1') }));
    expect(parsed).toEqual({ kind: 'event', event: event('t1') });
    expect(parsed?.kind === 'event' && parsed.event.occurredAt instanceof Date).toBe(true);
  });

  it('round-trips a per-user message; refuses what is not a message', () => {
    expect(parseMessage(serializeMessage({ kind: 'user', userId: 'u1', payload: { a: [1, 'b'] } }))).toEqual({ kind: 'user', userId: 'u1', payload: { a: [1, 'b'] } });
    for (const text of ['', 'not json', '{}', '{"kind":"event"}', '{"kind":"event","event":{"tenantId":"t","occurredAt":"nope"}}', '{"kind":"user"}']) {
      expect(parseMessage(text)).toBeNull();
    }
  });

  it("a tenant's channel carries its id as the hash tag (one cluster slot per tenant)", () => {
    expect(tenantChannel('inst', '0193a5c4-7d1e-7b2a-9c41-2f7e1d0b9a11')).toBe('fleet:inst:events:{0193a5c4-7d1e-7b2a-9c41-2f7e1d0b9a11}');
  });
});

describe('in-process bus', () => {
  it("hands a listener its own tenant's messages only, and stops when it returns", async () => {
    const bus = new InProcessEventBus();
    const a = await bus.listen('a', () => true);
    const b = await bus.listen('b', () => true);
    expect(bus.listenerCount()).toBe(2);
    await bus.publish(event('b'));
    await bus.publish(event('a'));
    expect((await a.next()).value).toEqual({ kind: 'event', event: event('a') });
    expect((await b.next()).value).toEqual({ kind: 'event', event: event('b') });
    await a.return();
    expect(bus.listenerCount('a')).toBe(0);
    await bus.close();
    expect(await b.next()).toEqual({ done: true, value: undefined });
  });
});

describe('a listener queue', () => {
  it('ends a waiting next() at once on return()', async () => {
    let ended = 0;
    const queue = new EventQueue<number>(4, () => (ended += 1));
    const waiting = queue.next();
    await queue.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(ended).toBe(1);
  });

  it('ends a listener that falls behind with SERVICE_UNAVAILABLE instead of buffering without bound', async () => {
    const queue = new EventQueue<number>(LISTENER_QUEUE_MAX, () => undefined);
    for (let i = 0; i <= LISTENER_QUEUE_MAX; i += 1) queue.push(i);
    await expect(queue.next()).rejects.toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE' } });
    expect(await queue.next()).toEqual({ done: true, value: undefined });
  });
});
