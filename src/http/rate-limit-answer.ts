import type { ApolloServerPlugin } from '@apollo/server';
import { AppError, ErrorCode } from '../errors/app-error';
import { subjectName, type RateLimitDecision, type RateLimitSubject } from '../rate-limiting/request-rate-limiter';

/**
 * What a rate-limit decision means for the response, in the guard (before parsing) and when an
 * operation's cost is charged (after pricing): the RateLimit-* headers always, and for a refusal
 * Retry-After and the error to answer with (the whole request: 429, or 503 when the store is
 * unreachable under the `closed` policy or this process is too busy to hear it).
 */
export function answerRateLimit(decision: RateLimitDecision, setHeader: (name: string, value: string) => void, subject: RateLimitSubject): void {
  const whose = subjectName(subject);
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
      setHeader('Retry-After', '1');
      throw overloaded('The server is overloaded; retry shortly');
    case 'store-unavailable':
      if (decision.policy === 'closed') return refuse(ErrorCode.SERVICE_UNAVAILABLE, 'Rate limiting is unavailable; retry shortly', 1, 503);
      return;
    case 'allowed':
      return;
  }
}

/**
 * How long to hold a RATE_LIMITED (or OVERLOADED) answer before sending it: the refusal's retryAfter, at most
 * `maxMs`. A client over its budget that asks again at once (a script in a loop, a flood) then
 * gets one answer per connection per `maxMs` instead of thousands a second, each of which costs
 * the server as much to refuse as a cheap request costs to serve; a client that honours
 * Retry-After loses nothing, since it would have waited longer anyway. Holding costs a timer.
 */
export function refusalHoldMs(error: { extensions?: Record<string, unknown> }, maxMs: number): number {
  // Shed work too: a client told "overloaded" that asks again at once is most of the overload.
  if (error.extensions?.code !== ErrorCode.RATE_LIMITED && error.extensions?.code !== ErrorCode.OVERLOADED) return 0;
  const retryAfter = error.extensions.retryAfter;
  return typeof retryAfter === 'number' ? Math.min(retryAfter * 1000, maxMs) : 0;
}

/**
 * The same hold for answers Apollo sends: an operation refused once priced, and fields refused
 * by their own limits (a login's per-address limit, the password-check budget), which would
 * otherwise be the cheapest answers to ask for again in a loop.
 */
export function holdRateLimitedAnswers(maxMs: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single' || maxMs <= 0) return;
          const longest = Math.max(0, ...(response.body.singleResult.errors ?? []).map((error) => refusalHoldMs(error, maxMs)));
          await hold(longest);
        },
      };
    },
  };
}

export const hold = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());

/** A refusal while the server is overloaded: 503, come back in a second (and held like a 429). */
export function overloaded(message: string): AppError {
  return new AppError(ErrorCode.OVERLOADED, message, { extensions: { retryAfter: 1 }, httpStatus: 503 });
}
