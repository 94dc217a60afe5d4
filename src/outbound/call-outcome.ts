import { OutboundError, type OutboundResponse } from './outbound-client';

/*
 * How a channel reads the result of an outbound call: delivered, worth retrying, or not. What
 * is kept of a failure (a delivery's error, an endpoint's lastError) is the status and a short,
 * cleaned excerpt of the answer: receivers put anything in error pages, and it is shown to the
 * tenant's admins and stored.
 */

export interface CallFailure {
  /** "HTTP 500", "timeout", "connection failed (ECONNREFUSED)". */
  summary: string;
  /** The summary and, for an HTTP answer, a short excerpt of its body. */
  detail: string;
  retryable: boolean;
}

const EXCERPT_CHARS = 120;

/** Printable, one line, short; never any of `redact` (the secrets the call was signed with). */
export function bodyExcerpt(body: string, redact: readonly string[] = []): string {
  let text = body;
  for (const secret of redact) if (secret) text = text.split(secret).join('[redacted]');
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

/** Null for a 2xx. 5xx, 408 and 429 are worth retrying; a 3xx (never followed) or another 4xx is not. */
export function failureOfResponse(response: OutboundResponse, redact: readonly string[] = []): CallFailure | null {
  const { status } = response;
  if (status >= 200 && status < 300) return null;
  const summary = `HTTP ${status}`;
  const excerpt = bodyExcerpt(response.body, redact);
  const note = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
  return {
    summary,
    detail: `${summary}${note}${excerpt ? `: ${excerpt}` : ''}`,
    retryable: status >= 500 || status === 408 || status === 429,
  };
}

/** Timeouts and broken connections are worth retrying; a refused address is not (it will be refused again). */
export function failureOfError(error: unknown): CallFailure {
  if (error instanceof OutboundError) {
    const summary =
      error.kind === 'URL_NOT_ALLOWED'
        ? 'address not allowed'
        : error.kind === 'TIMEOUT' || error.kind === 'CONNECT_TIMEOUT'
          ? 'timeout'
          : error.kind === 'ABORTED'
            ? 'aborted'
            : 'connection failed';
    // The client's messages often start with the same words: say them once.
    const detail = error.message.startsWith(summary) ? error.message : `${summary}: ${error.message}`;
    return { summary, detail, retryable: error.kind !== 'URL_NOT_ALLOWED' };
  }
  return { summary: 'failed', detail: 'failed: unexpected error', retryable: true };
}
