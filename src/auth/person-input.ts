import { z } from 'zod';
import { assertNoNul, badInput } from '../errors/app-error';

/** RFC 5321's limit on a forward path: no deliverable address is longer. */
export const MAX_EMAIL_LENGTH = 254;
export const MAX_PERSON_NAME_LENGTH = 200;

/** Emails are compared and stored trimmed and lower-cased. */
export const emailSchema = z.string().trim().toLowerCase().max(MAX_EMAIL_LENGTH).pipe(z.email());

/** The normalised (trimmed, lower-case) address, or BAD_USER_INPUT on `field`. */
export function parseEmail(value: string, field = 'email'): string {
  const email = emailSchema.safeParse(value);
  if (!email.success) throw badInput(`email is not a valid email address (at most ${MAX_EMAIL_LENGTH} characters)`, field);
  return email.data;
}

/** A person's name as members see it: trimmed, 1 to 200 characters, no NUL. */
export function parsePersonName(value: string, field = 'name'): string {
  const name = value.trim();
  if (!name || name.length > MAX_PERSON_NAME_LENGTH) throw badInput(`name must be 1 to ${MAX_PERSON_NAME_LENGTH} characters`, field);
  assertNoNul(name, field);
  return name;
}
