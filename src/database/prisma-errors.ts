/*
 * Prisma reports constraint violations with stable codes. Recognising them by code (never by
 * message text) lets callers turn them into CONFLICT / NOT_FOUND errors.
 */

interface PrismaKnownError {
  code: string;
  meta?: Record<string, unknown>;
}

function isPrismaKnownError(error: unknown): error is PrismaKnownError {
  return (
    error instanceof Error &&
    error.name === 'PrismaClientKnownRequestError' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

/** Fields of the unique constraint a P2002 error violated, when Prisma says which. */
export function uniqueViolationFields(error: unknown): string[] | null {
  if (!isPrismaKnownError(error) || error.code !== 'P2002') return null;
  const target = error.meta?.target;
  if (Array.isArray(target)) return target.map(String);
  const cause = (error.meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown } } } | undefined)?.cause;
  const fields = cause?.constraint?.fields;
  return Array.isArray(fields) ? fields.map((field) => String(field).replaceAll('"', '')) : [];
}

/** The row an update or delete addressed does not exist (any more). */
export function isRecordNotFound(error: unknown): boolean {
  return isPrismaKnownError(error) && error.code === 'P2025';
}
