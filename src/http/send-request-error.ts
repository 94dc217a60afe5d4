import type { Request, Response } from 'express';
import { errorResponseBody, httpStatusOf, type AppError } from '../errors/app-error';

const GRAPHQL_RESPONSE = 'application/graphql-response+json';

/**
 * Answers a request refused before GraphQL ran: the code's HTTP status (see
 * src/graphql/http-status-plugin.ts for the rule), a GraphQL-shaped body without `data`, in the
 * media type the client asked for, as Apollo does for what it answers itself.
 */
export function sendRequestError(req: Request, res: Response, error: AppError): void {
  const mediaType = req.accepts(['application/json', GRAPHQL_RESPONSE]) === GRAPHQL_RESPONSE ? GRAPHQL_RESPONSE : 'application/json';
  res.status(httpStatusOf(error)).type(`${mediaType}; charset=utf-8`).send(JSON.stringify(errorResponseBody(error)));
}
