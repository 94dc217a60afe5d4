-- CreateEnum
CREATE TYPE "TripStatus" AS ENUM ('DRAFT', 'PLANNED', 'DISPATCHED', 'IN_TRANSIT', 'DELIVERED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "ActorKind" AS ENUM ('USER', 'API_KEY');

-- DropIndex
DROP INDEX "Driver_status_idx";

-- DropIndex
DROP INDEX "Vehicle_status_idx";

-- CreateTable
CREATE TABLE "Trip" (
    "id" UUID NOT NULL,
    "reference" TEXT NOT NULL,
    "vehicleId" UUID,
    "driverId" UUID,
    "origin" TEXT NOT NULL,
    "destination" TEXT NOT NULL,
    "plannedDepartureAt" TIMESTAMPTZ(3),
    "plannedArrivalAt" TIMESTAMPTZ(3),
    "cargoDescription" TEXT,
    "cargoWeightKg" INTEGER,
    "status" "TripStatus" NOT NULL DEFAULT 'DRAFT',
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Trip_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TripTransition" (
    "id" UUID NOT NULL,
    "tripId" UUID NOT NULL,
    "fromStatus" "TripStatus" NOT NULL,
    "toStatus" "TripStatus" NOT NULL,
    "reason" TEXT,
    "actorKind" "ActorKind" NOT NULL,
    "actorId" UUID NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TripTransition_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Trip_reference_key" ON "Trip"("reference");

-- CreateIndex
CREATE INDEX "Trip_vehicleId_id_idx" ON "Trip"("vehicleId", "id");

-- CreateIndex
CREATE INDEX "Trip_driverId_id_idx" ON "Trip"("driverId", "id");

-- CreateIndex
CREATE INDEX "Trip_status_id_idx" ON "Trip"("status", "id");

-- CreateIndex
CREATE INDEX "Trip_plannedDepartureAt_id_idx" ON "Trip"("plannedDepartureAt", "id");

-- CreateIndex
CREATE INDEX "Trip_reference_id_idx" ON "Trip"("reference", "id");

-- CreateIndex
CREATE INDEX "Trip_updatedAt_id_idx" ON "Trip"("updatedAt", "id");

-- CreateIndex
CREATE INDEX "TripTransition_tripId_id_idx" ON "TripTransition"("tripId", "id");

-- CreateIndex
CREATE INDEX "Driver_status_id_idx" ON "Driver"("status", "id");

-- CreateIndex
CREATE INDEX "Driver_name_id_idx" ON "Driver"("name", "id");

-- CreateIndex
CREATE INDEX "Driver_licenseNumber_id_idx" ON "Driver"("licenseNumber", "id");

-- CreateIndex
CREATE INDEX "Driver_updatedAt_id_idx" ON "Driver"("updatedAt", "id");

-- CreateIndex
CREATE INDEX "Vehicle_status_id_idx" ON "Vehicle"("status", "id");

-- CreateIndex
CREATE INDEX "Vehicle_year_id_idx" ON "Vehicle"("year", "id");

-- CreateIndex
CREATE INDEX "Vehicle_odometerKm_id_idx" ON "Vehicle"("odometerKm", "id");

-- CreateIndex
CREATE INDEX "Vehicle_updatedAt_id_idx" ON "Vehicle"("updatedAt", "id");

-- CreateIndex
CREATE INDEX "Vehicle_plate_id_idx" ON "Vehicle"("plate", "id");

-- AddForeignKey
ALTER TABLE "Trip" ADD CONSTRAINT "Trip_vehicleId_fkey" FOREIGN KEY ("vehicleId") REFERENCES "Vehicle"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Trip" ADD CONSTRAINT "Trip_driverId_fkey" FOREIGN KEY ("driverId") REFERENCES "Driver"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TripTransition" ADD CONSTRAINT "TripTransition_tripId_fkey" FOREIGN KEY ("tripId") REFERENCES "Trip"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Added by hand (Prisma's schema language has no partial indexes): a vehicle, and a driver, is
-- on at most one trip on the road, so two dispatchers racing to send one truck cannot both win.
CREATE UNIQUE INDEX "Trip_vehicleId_on_the_road_key" ON "Trip"("vehicleId") WHERE "status" IN ('DISPATCHED', 'IN_TRANSIT');
CREATE UNIQUE INDEX "Trip_driverId_on_the_road_key" ON "Trip"("driverId") WHERE "status" IN ('DISPATCHED', 'IN_TRANSIT');

