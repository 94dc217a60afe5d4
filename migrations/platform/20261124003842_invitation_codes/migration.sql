-- Invitations made before codes existed cannot be accepted any more (accepting needs the
-- code); their tenants invite again.
DELETE FROM "Invitation";

-- AlterTable
ALTER TABLE "Invitation" ADD COLUMN     "codeHash" TEXT NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "Invitation_codeHash_key" ON "Invitation"("codeHash");
