-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "principalRateLimitCapacity" INTEGER,
ADD COLUMN     "principalRateLimitRefillPerSecond" DOUBLE PRECISION,
ADD COLUMN     "rateLimitCapacity" INTEGER,
ADD COLUMN     "rateLimitRefillPerSecond" DOUBLE PRECISION;

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "tenantId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "role" "MemberRole" NOT NULL,
    "persistedOnly" BOOLEAN NOT NULL DEFAULT false,
    "expiresAt" TIMESTAMPTZ(3),
    "createdByUserId" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PersistedOperation" (
    "id" UUID NOT NULL,
    "scope" TEXT NOT NULL,
    "tenantId" UUID,
    "sha256" TEXT NOT NULL,
    "operationName" TEXT,
    "document" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PersistedOperation_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_prefix_key" ON "ApiKey"("prefix");

-- CreateIndex
CREATE INDEX "ApiKey_tenantId_idx" ON "ApiKey"("tenantId");

-- CreateIndex
CREATE INDEX "PersistedOperation_tenantId_idx" ON "PersistedOperation"("tenantId");

-- CreateIndex
CREATE UNIQUE INDEX "PersistedOperation_scope_sha256_key" ON "PersistedOperation"("scope", "sha256");

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PersistedOperation" ADD CONSTRAINT "PersistedOperation_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;
