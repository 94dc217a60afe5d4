import { NotifiedCache } from '../database/notified-cache';
import type { NotificationSubscriber, PlatformChannel, PlatformNotifications } from '../database/platform-notifications';
import type { MemberRole } from './principal';

/** What a request needs to know about its session: who, which tenant, which role now. */
export interface SessionState {
  userId: string | null;
  tenantId: string | null;
  adminId: string | null;
  role: MemberRole | null;
  expiresAt: Date;
}

/**
 * Live sessions, so most requests skip the session query. Triggers on Session and Membership
 * notify every instance of each logout, revocation, re-role or removal, and the affected
 * entries are dropped at once; writers on this instance drop them synchronously too. Only live
 * sessions are cached, and only while notifications flow.
 */
export class SessionStateCache implements NotificationSubscriber {
  private readonly sessions: NotifiedCache<string, SessionState>;
  /** `userId:tenantId` -> the cached sessions of that membership. */
  private readonly byMembership = new Map<string, Set<string>>();

  constructor(notifications: PlatformNotifications | null, max: number) {
    this.sessions = new NotifiedCache(notifications, {
      max,
      dispose: (state, sessionId) => {
        const key = membershipKey(state.userId, state.tenantId);
        const set = key ? this.byMembership.get(key) : undefined;
        set?.delete(sessionId);
        if (key && set?.size === 0) this.byMembership.delete(key);
      },
    });
    notifications?.subscribe(this);
  }

  /** A cached live session, or undefined (not cached, expired, or cache bypassed). */
  get(sessionId: string): SessionState | undefined {
    const state = this.sessions.get(sessionId);
    if (state && state.expiresAt.getTime() <= Date.now()) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return state;
  }

  /** Token of the moment before the read: a write that lands meanwhile voids the result. */
  snapshot(): number {
    return this.sessions.snapshot();
  }

  remember(sessionId: string, state: SessionState, snapshot: number): void {
    if (!this.sessions.set(sessionId, state, snapshot)) return;
    const key = membershipKey(state.userId, state.tenantId);
    if (key) {
      const set = this.byMembership.get(key) ?? new Set<string>();
      set.add(sessionId);
      this.byMembership.set(key, set);
    }
  }

  invalidateSession(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  invalidateMembership(userId: string, tenantId: string): void {
    this.sessions.delete(...(this.byMembership.get(`${userId}:${tenantId}`) ?? []));
  }

  onNotification(channel: PlatformChannel, payload: string): void {
    if (channel !== 'fleet_access_changes') return;
    const [kind, first, second] = payload.split(':');
    if (kind === 'session' && first) this.invalidateSession(first);
    if (kind === 'membership' && first && second) this.invalidateMembership(first, second);
  }

  onReset(): void {
    this.sessions.clear();
    this.byMembership.clear();
  }
}

function membershipKey(userId: string | null, tenantId: string | null): string | null {
  return userId && tenantId ? `${userId}:${tenantId}` : null;
}
