import { errorMessageOf } from '../../src/observability/logger';

describe('errorMessageOf: one readable line for operators, never "undefined"', () => {
  it('says that nothing was thrown instead of printing undefined', () => {
    expect(errorMessageOf(undefined)).toBe('failed without saying why (no error was thrown)');
    expect(errorMessageOf(null)).toBe('failed without saying why (object was thrown)');
  });

  it('joins the parts of an AggregateError, whose own message is empty', () => {
    const refused = (address: string) => Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    expect(errorMessageOf(new AggregateError([refused('::1:5432'), refused('127.0.0.1:5432')]))).toBe(
      'connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432',
    );
  });

  it('keeps the first line only, adds the cause, and masks passwords in URLs', () => {
    expect(errorMessageOf(new Error('first line\n  at stack frame'))).toBe('first line');
    expect(errorMessageOf(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }))).toBe(
      'fetch failed (connect ECONNREFUSED 127.0.0.1:1)',
    );
    expect(errorMessageOf(new Error('cannot reach postgresql://app:s3cret@db:5432/fleet'))).toBe('cannot reach postgresql://app:***@db:5432/fleet');
    expect(errorMessageOf(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
  });
});
