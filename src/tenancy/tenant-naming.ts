import { badInput } from '../errors/app-error';

/*
 * Every SQL identifier derived from a tenant is built here, from a slug that passed
 * SLUG_PATTERN: lower-case letters, digits and single inner hyphens, 3 to 40 characters. Hyphens
 * become underscores, which slugs cannot contain, so two slugs never map to one identifier.
 */

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,38}[a-z0-9]$/;

export function isValidSlug(slug: string): boolean {
  return slug.length >= 3 && slug.length <= 40 && SLUG_PATTERN.test(slug);
}

export function assertValidSlug(slug: string): void {
  if (!isValidSlug(slug)) {
    throw badInput(
      'slug must be 3 to 40 characters of lower-case letters, digits and hyphens, starting and ending with a letter or digit',
      'slug',
    );
  }
}

/** The tenant's PostgreSQL schema. Schema names are per database, so the slug alone is enough. */
export function tenantSchemaName(slug: string): string {
  assertValidSlug(slug);
  return `t_${slug.replaceAll('-', '_')}`;
}

/** Installation ids are 8 lower-case hex characters (see installation.ts). */
export const INSTALLATION_ID_PATTERN = /^[0-9a-f]{8}$/;

/**
 * The tenant's PostgreSQL role. Roles belong to the whole server, not to one database, so the
 * name carries the installation id: two installations (or test databases) on one server never
 * share a tenant role. At most 3 + 8 + 1 + 40 = 52 characters, under PostgreSQL's 63.
 */
export function tenantRoleName(installationId: string, slug: string): string {
  assertValidSlug(slug);
  if (!INSTALLATION_ID_PATTERN.test(installationId)) throw new Error('malformed installation id');
  return `fg_${installationId}_${slug.replaceAll('-', '_')}`;
}

/** The prefix every tenant role of an installation starts with (for clean-up). */
export function tenantRolePrefix(installationId: string): string {
  if (!INSTALLATION_ID_PATTERN.test(installationId)) throw new Error('malformed installation id');
  return `fg_${installationId}_`;
}

/** Identifiers we generate only ever match this; anything else is refused before reaching SQL. */
const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Double-quotes an identifier we generated, refusing anything outside the safe alphabet. */
export function quoteIdentifier(identifier: string): string {
  if (!SAFE_IDENTIFIER.test(identifier)) throw new Error('refusing to quote an unexpected SQL identifier');
  return `"${identifier}"`;
}
