-- CreateEnum
CREATE TYPE "TenantMovePhase" AS ENUM ('COPYING', 'SWITCHED');

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "cluster" TEXT NOT NULL DEFAULT 'main',
ADD COLUMN     "readOnlySince" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "TenantMove" (
    "tenantId" UUID NOT NULL,
    "fromCluster" TEXT NOT NULL,
    "toCluster" TEXT NOT NULL,
    "phase" "TenantMovePhase" NOT NULL DEFAULT 'COPYING',
    "verification" JSONB,
    "startedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "switchedAt" TIMESTAMPTZ(3),
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "TenantMove_pkey" PRIMARY KEY ("tenantId")
);

-- CreateIndex
CREATE INDEX "Tenant_cluster_idx" ON "Tenant"("cluster");

-- AddForeignKey
ALTER TABLE "TenantMove" ADD CONSTRAINT "TenantMove_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;
