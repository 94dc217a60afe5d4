import { AppError } from '../../src/errors/app-error';
import { HOSTILE_SLUGS } from '../support/hostile-slugs';
import {
  assertValidSlug,
  isValidSlug,
  quoteIdentifier,
  tenantRoleName,
  tenantRolePrefix,
  tenantSchemaName,
} from '../../src/tenancy/tenant-naming';

const INSTALLATION = '0a1b2c3d';

describe('isValidSlug', () => {
  it.each([
    ['abc', 'the shortest slug (3 characters)'],
    ['acme', 'letters'],
    ['acme-co', 'one inner hyphen'],
    ['a-b-c', 'several single hyphens'],
    ['123', 'digits only'],
    ['9lives', 'starting with a digit'],
    ['fleet-2024', 'letters, hyphen and digits'],
    ['a'.repeat(40), '40 characters'],
    [`a${'-b'.repeat(19)}c`, '40 characters with hyphens'],
  ])('accepts %j (%s)', (slug) => {
    expect(isValidSlug(slug)).toBe(true);
    expect(() => assertValidSlug(slug)).not.toThrow();
  });

  it.each(HOSTILE_SLUGS)('refuses %j (%s)', (slug) => {
    expect(isValidSlug(slug)).toBe(false);
    let thrown: unknown;
    try {
      assertValidSlug(slug);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('BAD_USER_INPUT');
    expect((thrown as AppError).extensions.field).toBe('slug');
  });
});

describe('tenantSchemaName and tenantRoleName', () => {
  it('map hyphens to underscores under fixed prefixes', () => {
    expect(tenantSchemaName('acme')).toBe('t_acme');
    expect(tenantSchemaName('acme-co-2')).toBe('t_acme_co_2');
    expect(tenantRoleName(INSTALLATION, 'acme')).toBe('fg_0a1b2c3d_acme');
    expect(tenantRoleName(INSTALLATION, 'acme-co-2')).toBe('fg_0a1b2c3d_acme_co_2');
    expect(tenantRolePrefix(INSTALLATION)).toBe('fg_0a1b2c3d_');
    expect(tenantRoleName(INSTALLATION, 'acme').startsWith(tenantRolePrefix(INSTALLATION))).toBe(true);
  });

  it('keep the longest slug within PostgreSQL identifier limits (63 bytes)', () => {
    const slug = `${'a1-'.repeat(13)}z`; // 40 characters
    expect(slug).toHaveLength(40);
    expect(tenantRoleName(INSTALLATION, slug)).toHaveLength(52);
    expect(tenantSchemaName(slug)).toHaveLength(42);
    // The generated names pass the quoting guard, i.e. they are usable as-is.
    expect(quoteIdentifier(tenantRoleName(INSTALLATION, slug))).toBe(`"${tenantRoleName(INSTALLATION, slug)}"`);
    expect(quoteIdentifier(tenantSchemaName(slug))).toBe(`"${tenantSchemaName(slug)}"`);
  });

  it('refuse invalid slugs and malformed installation ids instead of building a name', () => {
    expect(() => tenantSchemaName('Acme')).toThrow(AppError);
    expect(() => tenantSchemaName("x'; DROP SCHEMA platform; --")).toThrow(AppError);
    expect(() => tenantRoleName(INSTALLATION, 'acme_co')).toThrow(AppError);
    for (const installation of ['', '0A1B2C3D', '0a1b2c3', '0a1b2c3d4', 'zzzzzzzz', '0a1b2c3"']) {
      expect(() => tenantRoleName(installation, 'acme')).toThrow('malformed installation id');
      expect(() => tenantRolePrefix(installation)).toThrow('malformed installation id');
    }
  });

  it('is injective: no two valid slugs share a schema or role name', () => {
    // Every string of length 3 to 5 over an alphabet that includes '-' and '_'.
    const alphabet = ['a', '1', '-', '_'];
    let level = [''];
    const valid: string[] = [];
    for (let length = 1; length <= 5; length += 1) {
      level = level.flatMap((prefix) => alphabet.map((char) => prefix + char));
      if (length >= 3) valid.push(...level.filter(isValidSlug));
    }
    expect(valid.length).toBeGreaterThan(100);
    expect(valid.some((slug) => slug.includes('-'))).toBe(true);
    expect(valid.some((slug) => slug.includes('_'))).toBe(false);
    const schemas = new Set(valid.map(tenantSchemaName));
    const roles = new Set(valid.map((slug) => tenantRoleName(INSTALLATION, slug)));
    expect(schemas.size).toBe(valid.length);
    expect(roles.size).toBe(valid.length);
    // And the inverse mapping recovers the slug.
    for (const slug of valid) expect(tenantSchemaName(slug).slice(2).replaceAll('_', '-')).toBe(slug);
  });

  it('gives different installations different roles for one slug', () => {
    expect(tenantRoleName('00000001', 'acme')).not.toBe(tenantRoleName('00000002', 'acme'));
  });
});

describe('quoteIdentifier', () => {
  it('double-quotes safe identifiers', () => {
    expect(quoteIdentifier('t_acme')).toBe('"t_acme"');
    expect(quoteIdentifier('_x')).toBe('"_x"');
    expect(quoteIdentifier(`a${'b'.repeat(62)}`)).toBe(`"a${'b'.repeat(62)}"`);
  });

  it.each([
    ['', 'empty'],
    ['Acme', 'upper case'],
    ['1abc', 'leading digit'],
    ['t-acme', 'hyphen'],
    ['t"acme', 'double quote'],
    ['t_acme"; DROP SCHEMA platform CASCADE; --', 'injection'],
    ["t_acme'", 'single quote'],
    ['t acme', 'space'],
    ['t_acme\u0000', 'NUL byte'],
    ['t_café', 'non-ASCII'],
    [`a${'b'.repeat(63)}`, '64 characters'],
  ])('refuses %j (%s)', (identifier) => {
    expect(() => quoteIdentifier(identifier)).toThrow('refusing to quote an unexpected SQL identifier');
  });
});
