import type { PlatformChannel } from '../database/platform-notifications';

/**
 * The PostgreSQL channel a tenant transaction that wrote an event notifies on commit; the payload
 * is the tenant's schema name. Every instance listens (src/database/platform-notifications.ts)
 * and wakes the tenant's delivery job.
 */
export const EVENTS_CHANNEL: PlatformChannel = 'fleet_events';
