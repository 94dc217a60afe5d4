import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import type { AuditActor } from '../audit/audit-entry';
import { queueAudit } from '../audit/audit-log';
import type { Authenticator } from '../auth/authenticator';
import type { PlatformDatabase } from '../database/platform-database';
import { AppError, ErrorCode, notFound, tenantReadOnly } from '../errors/app-error';
import { isReadOnlyTransaction } from '../database/prisma-errors';
import { describeError, type Logger } from '../observability/logger';
import { exportTenant, importTenant } from '../provisioning/tenant-archive';
import type { TenantClientPool } from '../tenancy/tenant-client-pool';
import type { TenantDirectory, TenantRecord } from '../tenancy/tenant-directory';
import { requestIdOf } from './request-id';
import { sendRequestError } from './send-request-error';

/*
 * Plain HTTP beside GraphQL, for platform admins: a tenant's archive streams out and in (GraphQL
 * has no streamed downloads or uploads).
 *
 *   GET  /admin/tenants/:slug/export   application/x-ndjson, the archive (src/provisioning/tenant-archive.ts)
 *   POST /admin/tenants/:slug/import   body: an archive (application/x-ndjson), into an empty tenant
 */

const NDJSON = 'application/x-ndjson';

export function createTenantArchiveRoutes(deps: {
  authenticator: Authenticator;
  platform: PlatformDatabase;
  directory: TenantDirectory;
  tenantClients: TenantClientPool;
  logger: Logger;
  maxImportBytes: number;
  /** Signs exports and checks imports (archiveSigningKey). */
  signingKey: Buffer;
}): Router {
  const router = Router();

  /** The platform admin calling and the tenant named, or a coded refusal. */
  async function admit(req: Request): Promise<{ by: AuditActor; tenant: TenantRecord; requestId: string }> {
    const requestId = requestIdOf(req);
    const principal = await deps.authenticator.authenticate(req.headers);
    if (principal.kind === 'anonymous') throw new AppError(ErrorCode.UNAUTHENTICATED, 'Sign in as a platform admin', { httpStatus: 401 });
    if (principal.kind !== 'platformAdmin') throw new AppError(ErrorCode.FORBIDDEN, 'Only platform admins export or import tenants');
    const tenant = await deps.directory.findBySlug(String(req.params.slug ?? ''));
    if (!tenant) throw notFound('Tenant');
    if (tenant.status !== 'ACTIVE' && tenant.status !== 'SUSPENDED') throw new AppError(ErrorCode.CONFLICT, `The tenant is ${tenant.status}: it has no complete schema`);
    if (tenant.purgeAfter) throw new AppError(ErrorCode.CONFLICT, 'The tenant is scheduled for deletion; cancelTenantDeletion first');
    return { by: { actorKind: 'PLATFORM_ADMIN', actorId: principal.adminId, requestId }, tenant, requestId };
  }

  const refuse = (req: Request, res: Response, error: unknown) => {
    if (error instanceof AppError) return sendRequestError(req, res, error);
    if (isReadOnlyTransaction(error)) return sendRequestError(req, res, tenantReadOnly());
    deps.logger.error({ err: describeError(error), path: req.path }, 'tenant archive request failed');
    return sendRequestError(req, res, new AppError(ErrorCode.INTERNAL_SERVER_ERROR, 'The archive could not be processed'));
  };

  router.get('/admin/tenants/:slug/export', async (req, res) => {
    let started = false;
    try {
      const admitted = await admit(req);
      const { tenant } = admitted;
      const write = async (line: string) => {
        if (!started) {
          started = true;
          res.status(200).type(NDJSON).setHeader('Content-Disposition', `attachment; filename="${tenant.slug}-${new Date().toISOString().slice(0, 10)}.ndjson"`);
        }
        if (res.destroyed) throw new Error('the client went away');
        if (!res.write(line)) await once(res, 'drain');
      };
      const counts = await exportTenant(deps.tenantClients, tenant, deps.signingKey, write);
      // The tenant's admins see who took their data out, and when.
      await deps.platform.prisma.$transaction((tx) =>
        queueAudit(tx, tenant.id, admitted.by, { action: 'tenant.exported', targetType: 'Tenant', targetId: tenant.id, metadata: { rows: counts } }),
      );
      deps.logger.info({ tenantId: tenant.id, slug: tenant.slug, counts }, 'tenant exported');
      res.end();
    } catch (error) {
      if (!started) return refuse(req, res, error);
      // Mid-stream the status is sent: the archive ends without its end line, which import refuses.
      deps.logger.error({ err: describeError(error) }, 'tenant export cut off');
      res.end();
    }
  });

  router.post('/admin/tenants/:slug/import', async (req, res) => {
    try {
      const { by, tenant, requestId } = await admit(req);
      // Being moved: its writes wait for the switch (a write would fail on the read-only role anyway).
      if (tenant.readOnlySince) throw tenantReadOnly();
      if (!req.is(NDJSON)) throw new AppError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `Send the archive as ${NDJSON}`);
      const counts = await importTenant(deps.tenantClients, tenant, deps.signingKey, linesOf(req, deps.maxImportBytes), by);
      deps.logger.info({ tenantId: tenant.id, slug: tenant.slug, counts, requestId }, 'tenant imported');
      res.status(200).json({ tenant: { id: tenant.id, slug: tenant.slug }, counts });
    } catch (error) {
      refuse(req, res, error);
    }
  });

  return router;
}

/** The longest line an archive may hold (a row; a stop's signature is at most 64 KiB). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;

/**
 * The request body's lines, refusing a body over `maxBytes` (PAYLOAD_TOO_LARGE) or a line over
 * MAX_LINE_BYTES as they arrive. Each chunk is searched once for line ends; the pieces of an
 * unfinished line wait in a list, so a long line costs its length, not its length squared.
 */
async function* linesOf(req: Request, maxBytes: number): AsyncGenerator<string> {
  let received = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > maxBytes) throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `An archive may be at most ${maxBytes} bytes (TENANT_IMPORT_MAX_BYTES)`);
    let start = 0;
    for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, end));
      yield Buffer.concat(pending).toString('utf8');
      pending = [];
      pendingBytes = 0;
      start = end + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `An archive line may be at most ${MAX_LINE_BYTES} bytes`);
    }
  }
  if (pending.length > 0) yield Buffer.concat(pending).toString('utf8');
}
