-- CreateIndex
CREATE INDEX "Stop_updatedAt_id_idx" ON "Stop"("updatedAt", "id");

-- CreateIndex
CREATE INDEX "Stop_windowStart_id_idx" ON "Stop"("windowStart", "id");

-- CreateIndex
CREATE INDEX "Stop_windowEnd_id_idx" ON "Stop"("windowEnd", "id");

-- CreateIndex
CREATE INDEX "Stop_completedAt_id_idx" ON "Stop"("completedAt", "id");
