-- CreateEnum
CREATE TYPE "NotificationChannel" AS ENUM ('EMAIL', 'WEBHOOK', 'NONE');

-- AlterTable
ALTER TABLE "FleetSettings" ADD COLUMN     "currency" TEXT NOT NULL DEFAULT 'EUR',
ADD COLUMN     "defaultNotificationChannel" "NotificationChannel" NOT NULL DEFAULT 'EMAIL',
ADD COLUMN     "lateToleranceMinutes" INTEGER NOT NULL DEFAULT 15;
