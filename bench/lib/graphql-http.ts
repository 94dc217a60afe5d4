/** GraphQL over HTTP with fetch: what the benchmark uses for single (timed or setup) requests. */

export class GraphQLRequestError extends Error {
  constructor(
    message: string,
    readonly codes: string[],
    readonly status: number,
  ) {
    super(message);
    this.name = 'GraphQLRequestError';
  }
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export async function graphql<T>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  let body: GraphQLResponse<T>;
  try {
    body = JSON.parse(text) as GraphQLResponse<T>;
  } catch {
    throw new GraphQLRequestError(`HTTP ${response.status}: ${text.slice(0, 200)}`, [], response.status);
  }
  if (body.errors?.length || !body.data) {
    const errors = body.errors ?? [];
    throw new GraphQLRequestError(
      `HTTP ${response.status}: ${errors.map((error) => `${error.extensions?.code ?? '?'} ${error.message}`).join('; ') || 'no data'}`,
      errors.map((error) => error.extensions?.code ?? 'UNKNOWN'),
      response.status,
    );
  }
  return body.data;
}

/** The request-path query: a page of 20 vehicles and each one's driver (two SQL queries). */
export const VEHICLES_QUERY = 'query Vehicles { vehicles(first: 20) { edges { node { plate make model driver { name licenseNumber } } } } }';

export interface VehiclesPage {
  vehicles: { edges: { node: { plate: string; make: string; model: string; driver: { name: string; licenseNumber: string } | null } }[] };
}

/** The JSON body the load generator sends. */
export const VEHICLES_BODY = JSON.stringify({ query: VEHICLES_QUERY });
