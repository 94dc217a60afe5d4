import { z } from 'zod';
import { badInput } from '../errors/app-error';

/*
 * Validation of fleet inputs beyond what GraphQL types say. A failure names the field, so a
 * client can show it next to the right input.
 */

/** PostgreSQL text cannot store NUL; refused here rather than failing in the database. */
const noNul = (value: string) => !value.includes('\u0000');
const NUL_MESSAGE = 'must not contain NUL characters';

/** Trimmed, non-empty text of at most `max` characters, without NUL. */
export const boundedText = (max: number) =>
  z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`).refine(noNul, NUL_MESSAGE);
const currentYear = () => new Date().getUTCFullYear();

const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** An ISO 4217 currency code, upper-cased. */
export const currencyCode = z
  .string()
  .trim()
  .toUpperCase()
  .refine((code) => CURRENCIES.has(code), 'must be an ISO 4217 currency code, such as EUR or USD');

/**
 * Plates and licence numbers are identifiers people type with stray spacing: trimmed, upper-cased
 * and each run of whitespace made one space, so "ab  100" and "AB 100" are one plate (the unique
 * index compares what is stored). Searches on these columns normalise the same way.
 */
export const normaliseIdentifier = (value: string): string => value.trim().replace(/\s+/g, ' ').toUpperCase();

export const vehicleFields = {
  plate: z
    .string()
    .overwrite(normaliseIdentifier)
    .min(1, 'must not be empty')
    .max(20, 'must be at most 20 characters')
    .regex(/^[A-Z0-9][A-Z0-9 -]*$/, 'may contain letters, digits, spaces and hyphens'),
  make: boundedText(100),
  model: boundedText(100),
  year: z
    .number()
    .int()
    .min(1900, 'must be 1900 or later')
    .refine((year) => year <= currentYear() + 1, 'cannot be more than a year in the future'),
  status: z.enum(['ACTIVE', 'MAINTENANCE', 'RETIRED']),
  odometerKm: z.number().int().min(0, 'must not be negative').max(10_000_000, 'is implausibly large'),
};

export const driverFields = {
  name: boundedText(200),
  licenseNumber: z
    .string()
    .overwrite(normaliseIdentifier)
    .min(1, 'must not be empty')
    .max(50, 'must be at most 50 characters')
    .refine(noNul, NUL_MESSAGE),
  phone: z
    .string()
    .trim()
    .max(40, 'must be at most 40 characters')
    .regex(/^\+?[0-9 ()-]*$/, 'may contain digits, spaces, parentheses, hyphens and a leading +'),
  email: z.string().trim().toLowerCase().max(254).refine(noNul, NUL_MESSAGE),
  status: z.enum(['ACTIVE', 'INACTIVE', 'ON_LEAVE']),
};

export const createVehicleSchema = z.object({
  ...vehicleFields,
  status: vehicleFields.status.optional(),
  odometerKm: vehicleFields.odometerKm.optional(),
});
/** The version a change was made against (CONFLICT if the record moved on). */
const expectedVersion = z.number().int().optional();

export const updateVehicleSchema = z.object(vehicleFields).partial().extend({ expectedVersion });

export const createDriverSchema = z.object({
  ...driverFields,
  phone: driverFields.phone.nullish(),
  email: driverFields.email.nullish(),
  status: driverFields.status.optional(),
});
export const updateDriverSchema = z
  .object({ ...driverFields, phone: driverFields.phone.nullable(), email: driverFields.email.nullable() })
  .partial()
  .extend({ expectedVersion });

/** GraphQL gives null for an omitted optional input field; null means "leave as is" here. */
function withoutNulls(input: Record<string, unknown>, nullable: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([key, value]) => value !== null || nullable.includes(key)));
}

/**
 * Longest search text: longer than anything it can match (plates, names, emails), and a
 * substring search costs the database in proportion to it (100 KB took a core for minutes).
 */
export const MAX_SEARCH_LENGTH = 100;

/** A list filter's search text, trimmed; undefined when empty. */
export function searchText(search: string | null | undefined): string | undefined {
  const trimmed = search?.trim();
  if (!trimmed) return undefined;
  if (!noNul(trimmed)) throw badInput(`filter.search ${NUL_MESSAGE}`, 'filter.search');
  if (trimmed.length > MAX_SEARCH_LENGTH) throw badInput(`filter.search must be at most ${MAX_SEARCH_LENGTH} characters`, 'filter.search');
  return trimmed;
}

export function parseInput<T extends z.ZodType>(schema: T, input: object, nullable: readonly string[] = []): z.infer<T> {
  const result = schema.safeParse(withoutNulls(input as Record<string, unknown>, nullable));
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join('.') ?? 'input';
    throw badInput(`${field} ${issue?.message ?? 'is invalid'}`, field);
  }
  return result.data;
}
