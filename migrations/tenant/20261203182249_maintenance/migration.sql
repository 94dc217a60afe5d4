-- CreateEnum
CREATE TYPE "MaintenanceKind" AS ENUM ('SERVICE', 'REPAIR', 'INSPECTION', 'TIRES', 'OTHER');

-- CreateTable
CREATE TABLE "MaintenanceRecord" (
    "id" UUID NOT NULL,
    "vehicleId" UUID NOT NULL,
    "kind" "MaintenanceKind" NOT NULL,
    "description" TEXT NOT NULL,
    "odometerKm" INTEGER,
    "costMinorUnits" INTEGER,
    "currency" TEXT,
    "openedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "MaintenanceRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "MaintenanceRecord_vehicleId_id_idx" ON "MaintenanceRecord"("vehicleId", "id");

-- CreateIndex
CREATE INDEX "MaintenanceRecord_openedAt_id_idx" ON "MaintenanceRecord"("openedAt", "id");

-- CreateIndex
CREATE INDEX "MaintenanceRecord_updatedAt_id_idx" ON "MaintenanceRecord"("updatedAt", "id");

-- AddForeignKey
ALTER TABLE "MaintenanceRecord" ADD CONSTRAINT "MaintenanceRecord_vehicleId_fkey" FOREIGN KEY ("vehicleId") REFERENCES "Vehicle"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
