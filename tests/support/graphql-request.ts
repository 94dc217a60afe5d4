/*
 * graphql-request ships a CommonJS build (which Jest loads) but only ESM type declarations,
 * which TypeScript refuses to import from a CommonJS file. Load the CommonJS build, typed by
 * the ESM declarations.
 */
import type * as GraphQLRequestPackage from 'graphql-request' with { 'resolution-mode': 'import' };

type GraphQLRequestModule = typeof GraphQLRequestPackage;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const graphqlRequest = require('graphql-request') as GraphQLRequestModule;

export const { GraphQLClient, ClientError } = graphqlRequest;
export type GraphQLClient = InstanceType<GraphQLRequestModule['GraphQLClient']>;
export type ClientError = InstanceType<GraphQLRequestModule['ClientError']>;
