-- CreateEnum
CREATE TYPE "IdempotencyKeyState" AS ENUM ('IN_PROGRESS', 'COMPLETED');

-- CreateTable
CREATE TABLE "IdempotencyKey" (
    "id" UUID NOT NULL,
    "scope" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "state" "IdempotencyKeyState" NOT NULL DEFAULT 'IN_PROGRESS',
    "claim" UUID NOT NULL,
    "status" INTEGER,
    "body" TEXT,
    "withheld" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMPTZ(3),
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "IdempotencyKey_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "IdempotencyKey_expiresAt_idx" ON "IdempotencyKey"("expiresAt");

-- CreateIndex
CREATE UNIQUE INDEX "IdempotencyKey_scope_key_key" ON "IdempotencyKey"("scope", "key");

-- Added by hand (Prisma cannot say these): a completed key holds its answer unless the answer was
-- withheld for carrying a secret, and a key is 1 to 255 characters, as the server accepts them.
ALTER TABLE "IdempotencyKey" ADD CONSTRAINT "IdempotencyKey_answer_check"
  CHECK ("state" = 'IN_PROGRESS' OR "withheld" OR ("status" IS NOT NULL AND "body" IS NOT NULL));
ALTER TABLE "IdempotencyKey" ADD CONSTRAINT "IdempotencyKey_key_length_check"
  CHECK (char_length("key") BETWEEN 1 AND 255);
