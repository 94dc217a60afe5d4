-- CreateEnum
CREATE TYPE "StopKind" AS ENUM ('PICKUP', 'DROP_OFF');

-- CreateTable
CREATE TABLE "Stop" (
    "id" UUID NOT NULL,
    "tripId" UUID NOT NULL,
    "kind" "StopKind" NOT NULL,
    "sequence" INTEGER NOT NULL,
    "address" TEXT NOT NULL,
    "windowStart" TIMESTAMPTZ(3),
    "windowEnd" TIMESTAMPTZ(3),
    "arrivedAt" TIMESTAMPTZ(3),
    "completedAt" TIMESTAMPTZ(3),
    "podRecipientName" TEXT,
    "podNote" TEXT,
    "podSignature" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "deletedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Stop_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TripNote" (
    "id" UUID NOT NULL,
    "tripId" UUID NOT NULL,
    "authorKind" "ActorKind" NOT NULL,
    "authorId" UUID NOT NULL,
    "body" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "deletedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "TripNote_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Stop_tripId_sequence_idx" ON "Stop"("tripId", "sequence");

-- CreateIndex
CREATE INDEX "TripNote_tripId_id_idx" ON "TripNote"("tripId", "id");

-- CreateIndex
CREATE INDEX "TripNote_tripId_updatedAt_id_idx" ON "TripNote"("tripId", "updatedAt", "id");

-- AddForeignKey
ALTER TABLE "Stop" ADD CONSTRAINT "Stop_tripId_fkey" FOREIGN KEY ("tripId") REFERENCES "Trip"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TripNote" ADD CONSTRAINT "TripNote_tripId_fkey" FOREIGN KEY ("tripId") REFERENCES "Trip"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Added by hand (Prisma's schema language has no partial indexes): a trip's live stops each
-- have their own place in its order. Deleted stops keep their last sequence and may collide.
CREATE UNIQUE INDEX "Stop_tripId_sequence_key" ON "Stop"("tripId", "sequence") WHERE "deletedAt" IS NULL;

-- No CHECK constraints here: Prisma's WebAssembly schema engine panics when it diffs a schema
-- holding one (prisma/orm#29635), which would break `npm run migration:new`. The bounds
-- (sequence, time window, signature and note sizes) are enforced in src/dispatch.
