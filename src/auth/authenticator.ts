import type { IncomingHttpHeaders } from 'node:http';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode } from '../errors/app-error';
import type { TenantDirectory, TenantRecord } from '../tenancy/tenant-directory';
import { looksLikeApiKey, type ApiKeyService } from '../api-keys/api-key-service';
import type { AccessTokens } from './access-tokens';
import type { SessionState, SessionStateCache } from './session-state-cache';
import type { MemberRole, Principal } from './principal';
import { assertTenantServes } from './session-service';
import { isUuid } from '../database/uuid';
import { countedAttempt, type RecordAuthAttempt } from '../observability/metrics';

const unauthenticated = (message: string) => new AppError(ErrorCode.UNAUTHENTICATED, message, { httpStatus: 401 });

interface SessionRow {
  active: boolean;
  user_id: string | null;
  tenant_id: string | null;
  admin_id: string | null;
  role: MemberRole | null;
  expires_at: Date;
}

/**
 * Turns a request's credentials (a JWT access token, or an API key as a bearer token or in
 * X-Api-Key) into a Principal. For tokens a valid signature is not enough: the session
 * must still be live (not logged out, not revoked for refresh-token reuse) and, for tenant
 * users, the membership must still exist; its current role counts, not the token's. The tenant
 * must be ACTIVE, and a tenant named by the request (X-Tenant header or host name) must be the
 * token's tenant.
 */
export class Authenticator {
  constructor(
    private readonly deps: {
      platform: PlatformDatabase;
      directory: TenantDirectory;
      accessTokens: AccessTokens;
      apiKeys: ApiKeyService;
      sessions: SessionStateCache;
      tenantHostSuffix: string | undefined;
      /** Metrics: each request's credentials (access token or API key), with their outcome. */
      onAuthAttempt?: RecordAuthAttempt;
    },
  ) {}

  authenticate(headers: IncomingHttpHeaders): Promise<Principal> {
    if (!headers.authorization && !headers['x-api-key']) return Promise.resolve({ kind: 'anonymous' });
    const method = headers['x-api-key'] || looksLikeApiKey(/^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1] ?? '') ? 'api_key' : 'access_token';
    return countedAttempt(this.deps.onAuthAttempt, method, () => this.attemptAuthenticate(headers));
  }

  private async attemptAuthenticate(headers: IncomingHttpHeaders): Promise<Principal> {
    const authorization = headers.authorization;
    const apiKeyHeader = headers['x-api-key'];
    if (!authorization && !apiKeyHeader) {
      return { kind: 'anonymous' };
    }
    let token: string | undefined;
    if (authorization) {
      token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
      if (!token) throw unauthenticated('Authorization header must be "Bearer <token>"');
      if (apiKeyHeader) throw unauthenticated('Send either Authorization or X-Api-Key, not both');
    } else {
      token = Array.isArray(apiKeyHeader) ? undefined : apiKeyHeader?.trim();
      if (!token || !looksLikeApiKey(token)) throw unauthenticated('X-Api-Key must hold one API key');
    }
    if (looksLikeApiKey(token)) {
      const principal = await this.deps.apiKeys.authenticate(token);
      this.assertRequestNamesSameTenant(headers, principal.tenant);
      return principal;
    }
    const claims = this.deps.accessTokens.verify(token);
    const session = await this.sessionState(claims.sid);
    if (!session) throw unauthenticated('Session ended; log in again');

    if (claims.role === 'PLATFORM_ADMIN') {
      if (session.adminId !== claims.sub || claims.tid) throw unauthenticated('Invalid access token');
      return { kind: 'platformAdmin', adminId: claims.sub, sessionId: claims.sid };
    }
    if (!claims.tid || session.userId !== claims.sub || session.tenantId !== claims.tid) {
      throw unauthenticated('Invalid access token');
    }
    if (!session.role) throw unauthenticated('No longer a member of this tenant');
    const tenant = await this.deps.directory.findById(claims.tid);
    if (!tenant) throw unauthenticated('Invalid access token');
    this.assertRequestNamesSameTenant(headers, tenant);
    assertTenantServes(tenant);
    return { kind: 'member', userId: claims.sub, sessionId: claims.sid, tenant, role: session.role };
  }

  /**
   * The live session and the member's current role: from the session cache, else one round trip.
   * Undefined when the session is unknown, ended or expired.
   */
  private async sessionState(sessionId: string): Promise<SessionState | undefined> {
    if (!isUuid(sessionId)) return undefined;
    const cached = this.deps.sessions.get(sessionId);
    if (cached) return cached;
    const snapshot = this.deps.sessions.snapshot();
    const result = await this.deps.platform.pool.query<SessionRow>({
      name: 'fleet-session-state',
      text: `SELECT (s."revokedAt" IS NULL AND s."expiresAt" > now()) AS active, s."expiresAt" AS expires_at,
                    s."userId" AS user_id, s."tenantId" AS tenant_id, s."adminId" AS admin_id, m."role" AS role
               FROM platform."Session" s
               LEFT JOIN platform."Membership" m ON m."userId" = s."userId" AND m."tenantId" = s."tenantId"
              WHERE s."id" = $1`,
      values: [sessionId],
    });
    const row = result.rows[0];
    if (!row?.active) return undefined;
    const state: SessionState = {
      userId: row.user_id,
      tenantId: row.tenant_id,
      adminId: row.admin_id,
      role: row.role,
      expiresAt: row.expires_at,
    };
    if (state.adminId || state.role) this.deps.sessions.remember(sessionId, state, snapshot);
    return state;
  }

  private assertRequestNamesSameTenant(headers: IncomingHttpHeaders, tenant: TenantRecord): void {
    const named = headers['x-tenant'];
    const fromHeader = Array.isArray(named) ? named : named ? [named] : [];
    for (const value of fromHeader) {
      const wanted = value.trim().toLowerCase();
      if (wanted !== tenant.slug && wanted !== tenant.id) {
        throw new AppError(ErrorCode.FORBIDDEN, 'The X-Tenant header names another tenant than the credentials', { httpStatus: 403 });
      }
    }
    const suffix = this.deps.tenantHostSuffix;
    const host = headers.host?.split(':')[0]?.toLowerCase();
    if (suffix && host?.endsWith(suffix)) {
      const subdomain = host.slice(0, -suffix.length);
      if (subdomain && subdomain !== tenant.slug) {
        throw new AppError(ErrorCode.FORBIDDEN, 'The host names another tenant than the credentials', { httpStatus: 403 });
      }
    }
  }
}
