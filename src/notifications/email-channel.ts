import type { PlatformDatabase } from '../database/platform-database';
import type { DomainEvent, EventTypeName } from '../events/domain-event';
import { notificationEmail } from '../email/email-templates';
import type { Mailer } from '../email/mailer';
import { isUuid } from '../database/uuid';
import { DeliveryError, type DeliveryContext, type NotificationChannel } from './channel';

/*
 * Events by email, to members whose address is verified: an unverified address may be a typo or
 * someone else's (an admin can create an account for any address), and a tenant's events must
 * not go to a stranger's inbox. The delivery worker retries; this only sends.
 */

const SUMMARIES: Record<EventTypeName, string> = {
  TRIP_CREATED: 'Trip created',
  TRIP_TRANSITIONED: 'Trip status changed',
  TRIP_LATE: 'Trip is late',
  STOP_ARRIVED: 'Arrived at a stop',
  STOP_COMPLETED: 'Stop completed',
  TRIP_NOTE_CREATED: 'New trip note',
  MAINTENANCE_OPENED: 'Maintenance opened',
  MAINTENANCE_CLOSED: 'Maintenance closed',
  VEHICLE_CREATED: 'Vehicle added',
  VEHICLE_DELETED: 'Vehicle deleted',
  DRIVER_CREATED: 'Driver added',
  DRIVER_DELETED: 'Driver deleted',
  MEMBER_ADDED: 'Member added',
  MEMBER_JOINED: 'Member joined',
  MEMBER_REMOVED: 'Member removed',
  MEMBER_ROLE_CHANGED: 'Member role changed',
  API_KEY_CREATED: 'API key created',
  API_KEY_REVOKED: 'API key revoked',
};

export class EmailChannel implements NotificationChannel {
  readonly kind = 'EMAIL' as const;

  constructor(private readonly deps: { mailer: Mailer; platform: PlatformDatabase }) {}

  async targets(_event: DomainEvent, recipients: readonly string[], _context?: Omit<DeliveryContext, 'attempt' | 'signal'>): Promise<string[]> {
    const ids = recipients.filter(isUuid);
    if (ids.length === 0) return [];
    const users = await this.deps.platform.prisma.user.findMany({
      where: { id: { in: ids }, emailVerifiedAt: { not: null } },
      select: { id: true },
    });
    const verified = new Set(users.map((user) => user.id));
    return ids.filter((id) => verified.has(id));
  }

  async deliver(event: DomainEvent, target: string, context: DeliveryContext): Promise<void> {
    // Looked up again at delivery: the member may have left the tenant or changed address since.
    const user = isUuid(target)
      ? await this.deps.platform.prisma.user.findFirst({
          where: { id: target, emailVerifiedAt: { not: null }, memberships: { some: { tenantId: event.tenantId } } },
          select: { email: true },
        })
      : null;
    if (!user) throw new DeliveryError('no verified address of a member of the tenant', false);
    const summary = await this.summaryOf(event, context);
    await this.deps.mailer.send(
      notificationEmail({
        to: user.email,
        tenantName: context.tenant.name,
        summary,
        details: [`Event: ${event.type}`, `At: ${event.occurredAt.toISOString()}`, `Event id: ${event.id}`],
      }),
    );
  }

  /** "Trip T-1001 is late": a trip's reference when the event is about one, read through the tenant's own role. */
  private async summaryOf(event: DomainEvent, context: DeliveryContext): Promise<string> {
    const summary = SUMMARIES[event.type];
    if (event.subject.type !== 'Trip' || !isUuid(event.subject.id)) return summary;
    const trip = await context.tenantData.db.trip.findUnique({ where: { id: event.subject.id }, select: { reference: true } });
    return trip ? summary.replace(/^Trip/, `Trip ${trip.reference}`) : summary;
  }
}
