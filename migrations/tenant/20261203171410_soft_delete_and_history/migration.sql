-- CreateEnum
CREATE TYPE "RecordChangeAction" AS ENUM ('CREATED', 'UPDATED', 'DELETED', 'RESTORED');

-- DropIndex
DROP INDEX "Driver_licenseNumber_key";

-- DropIndex
DROP INDEX "Trip_reference_key";

-- DropIndex
DROP INDEX "Vehicle_plate_key";

-- AlterTable
ALTER TABLE "Driver" ADD COLUMN     "deletedAt" TIMESTAMPTZ(3),
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "Trip" ADD COLUMN     "deletedAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "Vehicle" ADD COLUMN     "deletedAt" TIMESTAMPTZ(3),
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 1;

-- CreateTable
CREATE TABLE "RecordChange" (
    "id" UUID NOT NULL,
    "recordType" TEXT NOT NULL,
    "recordId" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "action" "RecordChangeAction" NOT NULL,
    "actorKind" "ActorKind" NOT NULL,
    "actorId" UUID NOT NULL,
    "changes" JSONB NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RecordChange_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "RecordChange_recordType_recordId_id_idx" ON "RecordChange"("recordType", "recordId", "id");

-- Added by hand (Prisma's schema language has no partial indexes): plates, licence numbers and
-- references are unique among the rows not deleted, so a deleted vehicle's plate can be reused
-- (restoring it then is a CONFLICT). Same names as the full unique indexes they replace.
CREATE UNIQUE INDEX "Vehicle_plate_key" ON "Vehicle"("plate") WHERE "deletedAt" IS NULL;
CREATE UNIQUE INDEX "Driver_licenseNumber_key" ON "Driver"("licenseNumber") WHERE "deletedAt" IS NULL;
CREATE UNIQUE INDEX "Trip_reference_key" ON "Trip"("reference") WHERE "deletedAt" IS NULL;

-- Added by hand: statistics for the new columns. Every list now filters on "deletedAt" IS NULL;
-- a column without statistics has that estimated at 0.5% of rows, and the planner would scan and
-- sort whole tables for a page until autovacuum analyzed them, which on a table that is mostly
-- read may not be soon. (ANALYZE runs inside the migration's transaction.)
ANALYZE "Vehicle", "Driver", "Trip";
