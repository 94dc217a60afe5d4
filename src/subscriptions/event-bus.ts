import { EventEmitter } from 'node:events';
import { Cluster } from 'ioredis';
import type { RedisClient } from '../database/redis';
import type { DomainEvent } from '../events/domain-event';
import { describeError, type Logger } from '../observability/logger';
import { EventQueue } from './event-queue';

/*
 * The event bus: what the server hands every committed domain event (and every per-user
 * message, such as an in-app notification) to, and what subscriptions listen on. Messages go
 * through one channel per tenant, so a listener is bound to a tenant when it starts listening and
 * can only ever be handed that tenant's messages; an instance subscribes to a tenant's channel
 * only while it has a listener of that tenant. With Redis the channel crosses instances; without
 * it (one instance) an EventEmitter carries it.
 */

/** A per-user message: delivered to that user's listeners in its tenant only (in-app notifications). */
export interface UserMessage {
  kind: 'user';
  userId: string;
  /** What the message carries, JSON-serialisable; its shape is the publisher's and the listener's business. */
  payload: unknown;
}

export interface EventMessage {
  kind: 'event';
  event: DomainEvent;
}

/** What a listener of a tenant receives. */
export type BusMessage = EventMessage | UserMessage;

export interface EventBus {
  /** Hands a committed event to every listener of its tenant, on every instance. */
  publish(event: DomainEvent): Promise<void>;
  /** Hands `payload` to the listeners of `userId` in `tenantId` (messages of one user, such as notifications). */
  publishToUser(tenantId: string, userId: string, payload: unknown): Promise<void>;
  /**
   * Listens to one tenant's messages: resolves once messages published from now on will arrive
   * (the Redis subscription is acknowledged). `accept` picks the messages to queue. The returned
   * queue ends when `return()` is called (a subscription ends) or the bus closes.
   */
  listen(tenantId: string, accept: (message: BusMessage) => boolean): Promise<EventQueue<BusMessage>>;
  /** Listeners of this instance whose subscription is acknowledged, per tenant when given (metrics, tests). */
  listenerCount(tenantId?: string): number;
  /** Ends every listener and closes the subscriber connection. */
  close(): Promise<void>;
}

/** Most messages one listener may have waiting: past it the listener is ended (a client that does not read). */
export const LISTENER_QUEUE_MAX = 256;

/** Redis channel of a tenant's messages; the hash tag keeps it on one cluster slot (sharded pub/sub). */
export function tenantChannel(namespace: string, tenantId: string): string {
  return `fleet:${namespace}:events:{${tenantId}}`;
}

interface WireMessage {
  kind: 'event' | 'user';
  event?: Omit<DomainEvent, 'occurredAt'> & { occurredAt: string };
  userId?: string;
  payload?: unknown;
}

export function serializeMessage(message: BusMessage): string {
  const wire: WireMessage =
    message.kind === 'event' ? { kind: 'event', event: { ...message.event, occurredAt: message.event.occurredAt.toISOString() } } : message;
  return JSON.stringify(wire);
}

/** The message, or null for text that is not one (another writer on the channel, a newer format). */
export function parseMessage(text: string): BusMessage | null {
  let wire: WireMessage;
  try {
    wire = JSON.parse(text) as WireMessage;
  } catch {
    return null;
  }
  if (wire.kind === 'event' && wire.event && typeof wire.event.tenantId === 'string') {
    const occurredAt = new Date(wire.event.occurredAt);
    if (Number.isNaN(occurredAt.getTime())) return null;
    return { kind: 'event', event: { ...wire.event, occurredAt } };
  }
  if (wire.kind === 'user' && typeof wire.userId === 'string') return { kind: 'user', userId: wire.userId, payload: wire.payload };
  return null;
}

interface Listener {
  accept: (message: BusMessage) => boolean;
  queue: EventQueue<BusMessage>;
  /** Its tenant's subscription is acknowledged: what is published from now on reaches it. */
  ready: boolean;
}

/** The local fan-out both buses share: listeners per tenant. */
abstract class LocalFanOut implements EventBus {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Per tenant with local listeners: its subscription, acknowledged once this resolves. */
  private readonly starting = new Map<string, Promise<void>>();
  protected closed = false;

  abstract publish(event: DomainEvent): Promise<void>;
  abstract publishToUser(tenantId: string, userId: string, payload: unknown): Promise<void>;
  /** The tenant got its first local listener: start receiving its messages. */
  protected abstract startTenant(tenantId: string): Promise<void>;
  /** Its last local listener left. */
  protected abstract stopTenant(tenantId: string): void;

  async listen(tenantId: string, accept: (message: BusMessage) => boolean): Promise<EventQueue<BusMessage>> {
    if (this.closed) throw new Error('event bus closed');
    let set = this.listeners.get(tenantId);
    const first = !set;
    if (!set) {
      set = new Set();
      this.listeners.set(tenantId, set);
    }
    const listener: Listener = {
      accept,
      ready: false,
      queue: new EventQueue<BusMessage>(LISTENER_QUEUE_MAX, () => {
        const current = this.listeners.get(tenantId);
        current?.delete(listener);
        if (current?.size === 0) {
          this.listeners.delete(tenantId);
          this.starting.delete(tenantId);
          this.stopTenant(tenantId);
        }
      }),
    };
    set.add(listener);
    if (first) this.starting.set(tenantId, this.startTenant(tenantId));
    try {
      // Also a second listener waits for the subscription the first one started.
      await this.starting.get(tenantId);
    } catch (error) {
      listener.queue.end();
      throw error;
    }
    listener.ready = true;
    return listener.queue;
  }

  listenerCount(tenantId?: string): number {
    let count = 0;
    for (const [tenant, set] of this.listeners) {
      if (tenantId !== undefined && tenant !== tenantId) continue;
      for (const listener of set) if (listener.ready) count += 1;
    }
    return count;
  }

  /** Hands a message of `tenantId` to that tenant's local listeners (and to no one else). */
  protected deliver(tenantId: string, message: BusMessage): void {
    // Belt and braces: the channel is the tenant's, and so must the event be.
    if (message.kind === 'event' && message.event.tenantId !== tenantId) return;
    for (const listener of [...(this.listeners.get(tenantId) ?? [])]) {
      if (listener.accept(message)) listener.queue.push(message);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const set of [...this.listeners.values()]) for (const listener of [...set]) listener.queue.end();
    this.listeners.clear();
  }
}

/** One instance only: messages stay in this process. */
export class InProcessEventBus extends LocalFanOut {
  private readonly emitter = new EventEmitter();

  constructor() {
    super();
    // One listener per tenant with local subscribers; no leak to warn about.
    this.emitter.setMaxListeners(0);
  }

  async publish(event: DomainEvent): Promise<void> {
    // Through the same text as Redis carries, so both buses hand listeners the same objects.
    this.emitter.emit(event.tenantId, serializeMessage({ kind: 'event', event }));
  }

  async publishToUser(tenantId: string, userId: string, payload: unknown): Promise<void> {
    this.emitter.emit(tenantId, serializeMessage({ kind: 'user', userId, payload }));
  }

  private readonly handlers = new Map<string, (text: string) => void>();

  protected async startTenant(tenantId: string): Promise<void> {
    const handler = (text: string) => {
      const message = parseMessage(text);
      if (message) this.deliver(tenantId, message);
    };
    this.handlers.set(tenantId, handler);
    this.emitter.on(tenantId, handler);
  }

  protected stopTenant(tenantId: string): void {
    const handler = this.handlers.get(tenantId);
    if (handler) this.emitter.off(tenantId, handler);
    this.handlers.delete(tenantId);
  }
}

/**
 * Across instances, through Redis pub/sub. Publishing uses the server's connection; receiving a
 * connection of its own (`duplicate()`: a connection in subscriber mode runs no other command).
 * On a Redis Cluster, sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7): a tenant's channel lives
 * on its hash tag's slot, so a message crosses one shard, not the whole cluster bus as a plain
 * PUBLISH would; ioredis 6 routes SSUBSCRIBE only with `shardedSubscribers` on.
 */
export class RedisEventBus extends LocalFanOut {
  private readonly subscriber: RedisClient;
  private readonly sharded: boolean;
  /** Tenants whose channel is subscribed, or about to be. */
  private readonly subscribed = new Set<string>();

  constructor(
    private readonly publisher: RedisClient,
    private readonly namespace: string,
    private readonly logger: Logger,
  ) {
    super();
    this.sharded = publisher instanceof Cluster;
    this.subscriber =
      publisher instanceof Cluster
        ? publisher.duplicate([], { shardedSubscribers: true, enableOfflineQueue: true })
        : publisher.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, maxRetriesPerRequest: null });
    this.subscriber.on('error', () => undefined);
    const onMessage = (channel: string, text: string) => {
      const tenantId = this.tenantOfChannel(channel);
      if (tenantId === null) return;
      const message = parseMessage(text);
      if (message) this.deliver(tenantId, message);
    };
    this.subscriber.on(this.sharded ? 'smessage' : 'message', onMessage);
  }

  async publish(event: DomainEvent): Promise<void> {
    await this.send(event.tenantId, serializeMessage({ kind: 'event', event }));
  }

  async publishToUser(tenantId: string, userId: string, payload: unknown): Promise<void> {
    await this.send(tenantId, serializeMessage({ kind: 'user', userId, payload }));
  }

  private async send(tenantId: string, text: string): Promise<void> {
    const channel = tenantChannel(this.namespace, tenantId);
    if (this.publisher instanceof Cluster) await this.publisher.spublish(channel, text);
    else await this.publisher.publish(channel, text);
  }

  private tenantOfChannel(channel: string): string | null {
    const prefix = `fleet:${this.namespace}:events:{`;
    return channel.startsWith(prefix) && channel.endsWith('}') ? channel.slice(prefix.length, -1) : null;
  }

  /**
   * (Un)subscribe commands one at a time: ioredis leaves subscriber mode when an UNSUBSCRIBE's
   * reply counts no channel left, even with a SUBSCRIBE already sent behind it, whose messages
   * it then drops. Waiting for each reply keeps the last tenant leaving and the next one coming
   * (a subscription completed and another started at once) from losing the newcomer's messages.
   */
  private serially<T>(command: () => Promise<T>): Promise<T> {
    const run = this.commands.then(command, command);
    this.commands = run.catch(() => undefined);
    return run;
  }

  private commands: Promise<unknown> = Promise.resolve();

  protected startTenant(tenantId: string): Promise<void> {
    const channel = tenantChannel(this.namespace, tenantId);
    const subscribing = this.serially(() => (this.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel))).then(() => undefined);
    this.subscribed.add(tenantId);
    subscribing.catch(() => this.subscribed.delete(tenantId));
    return subscribing;
  }

  protected stopTenant(tenantId: string): void {
    this.subscribed.delete(tenantId);
    if (this.closed) return;
    const channel = tenantChannel(this.namespace, tenantId);
    void this.serially(async () => {
      // A listener of the tenant came back meanwhile: its subscription (queued after this) stands.
      if (this.subscribed.has(tenantId)) return;
      await (this.sharded ? this.subscriber.sunsubscribe(channel) : this.subscriber.unsubscribe(channel));
    }).catch((error: unknown) => this.logger.warn({ err: describeError(error) }, 'event bus: unsubscribing a tenant channel failed'));
  }

  override async close(): Promise<void> {
    await super.close();
    this.subscriber.disconnect();
  }
}

/** The bus for this server: Redis when it has one, else this process only. */
export function createEventBus(redis: RedisClient | null, namespace: string, logger: Logger): EventBus {
  return redis ? new RedisEventBus(redis, namespace, logger) : new InProcessEventBus();
}
