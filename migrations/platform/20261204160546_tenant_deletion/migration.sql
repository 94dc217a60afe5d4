-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "deletionRequestedAt" TIMESTAMPTZ(3),
ADD COLUMN     "purgeAfter" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "Tenant_purgeAfter_idx" ON "Tenant"("purgeAfter");
