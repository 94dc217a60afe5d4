import { randomUUID } from 'node:crypto';
import type { Request } from 'express';

/** The caller's X-Request-Id when it is a plain token (letters, digits, _ and -, at most 64), else a new one. */
export function requestIdOf(req: Request): string {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
}
