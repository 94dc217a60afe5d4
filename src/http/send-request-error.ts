import type { Request, Response } from 'express';
import { errorResponseBody, httpStatusOf, type AppError } from '../errors/app-error';

const GRAPHQL_RESPONSE = 'application/graphql-response+json';

/**
 * Answers a request refused before GraphQL ran: the code's HTTP status (see
 * src/graphql/http-status-plugin.ts for the rule), Retry-After when the error has a retryAfter, a
 * GraphQL-shaped body without `data`, in the media type the client asked for, as Apollo does for
 * what it answers itself.
 */
export function sendRequestError(req: Request, res: Response, error: AppError): void {
  const mediaType = req.accepts(['application/json', GRAPHQL_RESPONSE]) === GRAPHQL_RESPONSE ? GRAPHQL_RESPONSE : 'application/json';
  // A refusal that says when to come back says it in HTTP too.
  const { retryAfter } = error.extensions as { retryAfter?: unknown };
  if (typeof retryAfter === 'number' && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', String(retryAfter));
  res.status(httpStatusOf(error)).type(`${mediaType}; charset=utf-8`).send(JSON.stringify(errorResponseBody(error)));
}
