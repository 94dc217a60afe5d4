import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Credentials are redacted wherever they could appear; error objects are
 * never logged whole (their messages and stacks can carry SQL), see describeError.
 */
export function createLogger(level: string): Logger {
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
  });
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
