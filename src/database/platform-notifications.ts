import pg from 'pg';
import type { Logger } from '../observability/logger';

/**
 * Channels the platform migrations' triggers notify on (see migrations/platform). Payloads:
 * a tenant id; `session:<id>`; `membership:<userId>:<tenantId>`; `apiKey:<prefix>`;
 * `persistedOperation:<scope>:<sha256>`; on fleet_audit_outbox, the tenant id whose audit entries were queued;
 * on fleet_events, the schema name of a tenant whose transaction wrote events (no trigger: the
 * tenant's own transaction notifies, src/audit/audit-log.ts).
 */
export const PLATFORM_CHANNELS = ['fleet_tenant_changes', 'fleet_access_changes', 'fleet_audit_outbox', 'fleet_events'] as const;
export type PlatformChannel = (typeof PLATFORM_CHANNELS)[number];

export interface NotificationSubscriber {
  /** A change notification arrived. */
  onNotification(channel: PlatformChannel, payload: string): void;
  /** Notifications may have been missed (connection lost or not yet up): forget everything. */
  onReset(): void;
}

const RECONNECT_DELAY_MS = 1_000;

/**
 * One LISTEN connection per instance for the platform's change notifications, shared by the
 * caches that must never serve a stale entry (tenants, sessions). While it is down,
 * `isListening()` is false and caches must read through; it reconnects by itself.
 */
export class PlatformNotifications {
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly subscribers: NotificationSubscriber[] = [];

  /**
   * `channels`: all of them on the platform's database; on another tenant cluster only
   * fleet_events, which its tenants' transactions notify on their own database.
   */
  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly logger: Logger,
    private readonly channels: readonly PlatformChannel[] = PLATFORM_CHANNELS,
    /** Whose notifications these are, in the log: the platform's, or a tenant cluster's events. */
    private readonly source = 'platform change notifications',
  ) {}

  /** Set while the listener is lost: reconnecting every second logs once, not once a try. */
  private outage = false;

  subscribe(subscriber: NotificationSubscriber): void {
    this.subscribers.push(subscriber);
  }

  isListening(): boolean {
    return this.listening;
  }

  async start(): Promise<void> {
    await this.listen();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.listening = false;
    await this.client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    // keepAlive: a connection that dies without closing (a network partition) is noticed by
    // TCP keepalive rather than never.
    const client = new pg.Client({ ...this.connection, application_name: 'fleet-graphql-listen', keepAlive: true });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      this.listening = false;
      for (const subscriber of this.subscribers) subscriber.onReset();
      if (!this.closed) {
        if (!this.outage) this.logger.warn({ channels: this.channels }, `${this.source} lost; caches bypassed until reconnected (retrying every second)`);
        this.outage = true;
        this.reconnectTimer = setTimeout(() => void this.listen().catch(() => undefined), RECONNECT_DELAY_MS);
        this.reconnectTimer.unref();
      }
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      const channel = message.channel as PlatformChannel;
      if (!message.payload || !this.channels.includes(channel)) return;
      for (const subscriber of this.subscribers) subscriber.onNotification(channel, message.payload);
    });
    this.client = client;
    try {
      await client.connect();
      for (const channel of this.channels) await client.query(`LISTEN ${channel}`);
    } catch (error) {
      lost();
      throw error;
    }
    if (this.closed) {
      await client.end();
      return;
    }
    // Anything cached before this point may have missed a notification.
    for (const subscriber of this.subscribers) subscriber.onReset();
    this.listening = true;
    if (this.outage) this.logger.info({ channels: this.channels }, `${this.source} listened to again`);
    this.outage = false;
  }
}
