-- DropIndex
DROP INDEX "Membership_tenantId_idx";

-- CreateIndex
CREATE INDEX "Membership_tenantId_createdAt_userId_idx" ON "Membership"("tenantId", "createdAt", "userId");

-- Added by hand (Prisma cannot declare an index on an expression, and its diff leaves them be):
-- the orders of membersConnection that are not plain columns. Each expression is the one
-- src/auth/member-list.ts sorts by, word for word, or PostgreSQL would not use the index.

-- ROLE: by rank, VIEWER < MEMBER < MANAGER < ADMIN < OWNER (the enum declares them the other way round).
CREATE INDEX "Membership_tenantId_rank_userId_idx" ON "Membership"("tenantId", (CASE "role" WHEN 'VIEWER' THEN 1 WHEN 'MEMBER' THEN 2 WHEN 'MANAGER' THEN 3 WHEN 'ADMIN' THEN 4 WHEN 'OWNER' THEN 5 END), "userId");

-- NAME: case-insensitive.
CREATE INDEX "User_lower_name_id_idx" ON "User"(lower("name"), "id");
