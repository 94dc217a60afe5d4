import { stripSchemaCreation } from '../../scripts/new-migration';

describe('stripSchemaCreation', () => {
  it('removes the CREATE SCHEMA block Prisma puts first, keeping the rest byte for byte', () => {
    const rest = '-- CreateTable\nCREATE TABLE "Vehicle" (\n    "id" UUID NOT NULL\n);\n';
    expect(stripSchemaCreation(`-- CreateSchema\nCREATE SCHEMA IF NOT EXISTS "app";\n\n${rest}`)).toBe(rest);
  });

  it('removes the block without the blank line after it, and every occurrence', () => {
    const sql =
      '-- CreateSchema\nCREATE SCHEMA IF NOT EXISTS "app";\n' +
      '-- AlterTable\nALTER TABLE "Vehicle" ADD COLUMN "vin" TEXT;\n\n' +
      '-- CreateSchema\nCREATE SCHEMA IF NOT EXISTS "other";\n\n' +
      '-- CreateIndex\nCREATE INDEX "i" ON "Vehicle"("vin");\n';
    expect(stripSchemaCreation(sql)).toBe(
      '-- AlterTable\nALTER TABLE "Vehicle" ADD COLUMN "vin" TEXT;\n\n-- CreateIndex\nCREATE INDEX "i" ON "Vehicle"("vin");\n',
    );
  });

  it('leaves a migration without schema creation untouched', () => {
    const sql = '-- AlterTable\nALTER TABLE "Vehicle" ADD COLUMN "vin" TEXT;\n';
    expect(stripSchemaCreation(sql)).toBe(sql);
    expect(stripSchemaCreation('')).toBe('');
  });

  it('keeps schema statements that are not the generated header', () => {
    // Only the exact "-- CreateSchema" block goes; a hand-written CREATE SCHEMA stays visible.
    const handWritten = 'CREATE SCHEMA IF NOT EXISTS "app";\n';
    expect(stripSchemaCreation(handWritten)).toBe(handWritten);
    const notIfNotExists = '-- CreateSchema\nCREATE SCHEMA "app";\n\nSELECT 1;\n';
    expect(stripSchemaCreation(notIfNotExists)).toBe(notIfNotExists);
  });
});
