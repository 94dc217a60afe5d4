-- CreateTable
CREATE TABLE "TenantAuditOutbox" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actorKind" TEXT NOT NULL,
    "actorId" UUID,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT NOT NULL,
    "requestId" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "TenantAuditOutbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TenantAuditOutbox_tenantId_id_idx" ON "TenantAuditOutbox"("tenantId", "id");

-- AddForeignKey
ALTER TABLE "TenantAuditOutbox" ADD CONSTRAINT "TenantAuditOutbox_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Committed entries wake every instance's relay (src/audit/audit-relay.ts), which moves them into
-- the tenant's AuditEvent table; PostgreSQL sends one notification per tenant and transaction.
CREATE FUNCTION "notify_tenant_audit_queued"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fleet_audit_outbox', NEW."tenantId"::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER "TenantAuditOutbox_notify_queued"
AFTER INSERT ON "TenantAuditOutbox"
FOR EACH ROW EXECUTE FUNCTION "notify_tenant_audit_queued"();
