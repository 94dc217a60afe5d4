import pino, { type Logger } from 'pino';

export type { Logger };

/** Log lines are written in chunks of about this size, or after FLUSH_INTERVAL_MS at the latest. */
const WRITE_CHUNK_BYTES = 4096;
const FLUSH_INTERVAL_MS = 1000;

/**
 * Structured JSON logs. Credentials are redacted wherever they could appear; error objects are
 * never logged whole (their messages and stacks can carry SQL), see describeError.
 *
 * Lines go to standard output through pino's asynchronous destination, a write per 4 KB
 * instead of a write per line (which cost about 4% of a busy server's CPU), flushed at least
 * every second and, by pino, when the process exits, crashes or is signalled. What can be lost
 * is the last second of lines when the machine itself dies or the process is killed with SIGKILL.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: WRITE_CHUNK_BYTES });
  setInterval(() => {
    try {
      destination.flush();
    } catch {
      // Not open yet, or already closed at exit (where pino flushes it itself).
    }
  }, FLUSH_INTERVAL_MS).unref();
  return pino({
    level,
    base: { service: 'fleet-graphql' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'req.headers.cookie',
        '*.password',
        '*.accessToken',
        '*.refreshToken',
        '*.token',
        '*.secret',
        'variables.*.password',
        'variables.password',
        'variables.token',
      ],
      censor: '[redacted]',
    },
  }, destination);
}

/** What may be logged about an error: its class and code, never its message's SQL or stack. */
export function describeError(error: unknown): { name: string; code?: string; message?: string } {
  if (!(error instanceof Error)) return { name: typeof error };
  const code = (error as { code?: unknown }).code;
  const fromDatabase =
    error.name.startsWith('PrismaClient') || error.name === 'DriverAdapterError' || typeof (error as { severity?: unknown }).severity === 'string';
  return {
    name: error.name,
    ...(typeof code === 'string' ? { code } : {}),
    ...(fromDatabase ? {} : { message: error.message.split('\n')[0]?.slice(0, 300) }),
  };
}

/**
 * One line for a person at a terminal (start-up failures, operator scripts): what went wrong,
 * never `undefined`. The first line of each message only (no stack, no multi-line SQL), with
 * passwords in connection URLs masked. An AggregateError (a connection refused on every address
 * of `localhost`) has an empty message of its own, so its parts are joined.
 */
export function errorMessageOf(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') {
    const parts = (error.errors as unknown[]).map(errorMessageOf);
    return [...new Set(parts)].join('; ') || 'AggregateError';
  }
  if (error instanceof Error) {
    const firstLine = error.message.split('\n')[0]?.trim() ?? '';
    const code = (error as { code?: unknown }).code;
    const text = firstLine || (typeof code === 'string' ? code : '') || error.name;
    // fetch says only "fetch failed"; why (ECONNREFUSED, a DNS failure) is its cause.
    const cause = error.cause === undefined ? '' : ` (${errorMessageOf(error.cause)})`;
    return maskUrlPasswords(text) + cause;
  }
  if (typeof error === 'string' && error.trim() !== '') return maskUrlPasswords(error.split('\n')[0] ?? error);
  return `failed without saying why (${error === undefined ? 'no error' : typeof error} was thrown)`;
}

const maskUrlPasswords = (text: string) => text.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
