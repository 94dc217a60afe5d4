import { AppError, ErrorCode } from '../errors/app-error';
import type { RateLimitDecision } from '../rate-limiting/request-rate-limiter';

/**
 * What a rate-limit decision means for the response, in the guard (before parsing) and when an
 * operation's cost is charged (after pricing): the RateLimit-* headers always, and for a refusal
 * Retry-After and the error to answer with (the whole request: 429, or 503 when the store is
 * unreachable under the `closed` policy or this process is too busy to hear it).
 */
export function answerRateLimit(decision: RateLimitDecision, setHeader: (name: string, value: string) => void, whose: string): void {
  setHeader('RateLimit-Limit', String(decision.limit));
  setHeader('RateLimit-Remaining', String(decision.remaining));
  setHeader('RateLimit-Reset', String(decision.resetSeconds));
  const refuse = (code: ErrorCode, message: string, retryAfter: number, httpStatus: number): never => {
    setHeader('Retry-After', String(retryAfter));
    throw new AppError(code, message, { extensions: { retryAfter }, httpStatus });
  };
  switch (decision.outcome) {
    case 'limited':
      return refuse(ErrorCode.RATE_LIMITED, `Rate limit reached for ${whose}; retry in ${decision.retryAfterSeconds} s`, decision.retryAfterSeconds, 429);
    case 'overloaded':
      return refuse(ErrorCode.OVERLOADED, 'The server is overloaded; retry shortly', 1, 503);
    case 'store-unavailable':
      if (decision.policy === 'closed') return refuse(ErrorCode.SERVICE_UNAVAILABLE, 'Rate limiting is unavailable; retry shortly', 1, 503);
      return;
    case 'allowed':
      return;
  }
}
