-- CreateEnum
CREATE TYPE "AuditActorKind" AS ENUM ('USER', 'API_KEY', 'PLATFORM_ADMIN', 'SYSTEM');

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" UUID NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actorKind" "AuditActorKind" NOT NULL,
    "actorId" UUID,
    "action" TEXT NOT NULL,
    "targetType" TEXT NOT NULL,
    "targetId" TEXT NOT NULL,
    "requestId" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "AuditEvent_occurredAt_id_idx" ON "AuditEvent"("occurredAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "AuditEvent_actorId_occurredAt_id_idx" ON "AuditEvent"("actorId", "occurredAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "AuditEvent_targetId_occurredAt_id_idx" ON "AuditEvent"("targetId", "occurredAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "AuditEvent_action_occurredAt_id_idx" ON "AuditEvent"("action", "occurredAt" DESC, "id" DESC);

-- Hand-added (Prisma's schema cannot say "partial"): the retention purge finds deleted rows by
-- age without reading the live ones. A generated migration must not drop these.
CREATE INDEX "Vehicle_deletedAt_purge_idx" ON "Vehicle"("deletedAt") WHERE "deletedAt" IS NOT NULL;
CREATE INDEX "Driver_deletedAt_purge_idx" ON "Driver"("deletedAt") WHERE "deletedAt" IS NOT NULL;
CREATE INDEX "Trip_deletedAt_purge_idx" ON "Trip"("deletedAt") WHERE "deletedAt" IS NOT NULL;
