import { AppError } from '../../src/errors/app-error';
import { MAX_INPUT_NESTING, assertSaneInput } from '../../src/graphql/hardening';

/** `levels` objects (or arrays) inside one another, parsed: JSON.parse copes with any depth. */
function nested(levels: number, shape: 'object' | 'array' = 'object', leaf = '1'): unknown {
  const text = shape === 'object' ? `${'{"a":'.repeat(levels)}${leaf}${'}'.repeat(levels)}` : `${'['.repeat(levels)}${leaf}${']'.repeat(levels)}`;
  return JSON.parse(text) as unknown;
}

function refusal(value: unknown): string | null {
  try {
    assertSaneInput(value, 'variables');
    return null;
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.extensions.http).toEqual({ status: 400 });
    return error.message;
  }
}

describe('the nesting and Unicode check of request JSON', () => {
  it('allows MAX_INPUT_NESTING levels (the outermost one included) and refuses one more', () => {
    expect(MAX_INPUT_NESTING).toBe(64);
    for (const shape of ['object', 'array'] as const) {
      expect(refusal(nested(64, shape))).toBeNull();
      expect(refusal(nested(65, shape))).toBe('Request variables are nested more than 64 levels deep');
    }
  });

  it('stops a million levels at the 65th, without recursion', () => {
    expect(refusal(nested(1_000_000, 'array'))).toMatch(/nested more than 64 levels/);
  });

  it('refuses a lone surrogate, high or low, in any string value or key', () => {
    for (const value of ['a\ud800b', 'a\udc00b', '\ud83d', 'x\ude97', ['ok', { deeper: ['\udbff'] }], { ['k\ud800']: 'v' }, nested(10, 'object', '"\\udfff"')]) {
      expect(refusal(value)).toBe('Request contains malformed Unicode (a lone surrogate) in variables');
    }
  });

  it('accepts well-formed text, a NUL (fields refuse it themselves, naming the field), scalars and nothing', () => {
    for (const value of ['a\ud83d\ude97b', '\u{10FFFF}', 'a\u0000b', { input: { make: 'Škoda', n: 1, ok: true, none: null } }, [], 42, undefined, null]) {
      expect(refusal(value)).toBeNull();
    }
  });
});
