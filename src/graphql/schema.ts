import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { authResolvers } from '../auth/auth.resolvers';
import { SCHEMA_DIR } from '../config/paths';
import { fleetResolvers } from '../fleet/fleet.resolvers';
import { platformResolvers } from '../provisioning/platform.resolvers';
import { applyAccessPolicy } from './access-policy';
import type { RequestContext } from './context';
import { scalarResolvers } from './scalars';

/** The SDL files in schema/, the contract everything else is generated from. */
export function loadTypeDefs(dir = SCHEMA_DIR): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.graphql'))
    .sort()
    .map((file) => readFileSync(path.join(dir, file), 'utf8'));
}

/** SDL + each capability's resolvers, with the SDL's access policy enforced on every root field. */
export function buildSchema(): GraphQLSchema {
  const schema = makeExecutableSchema({
    typeDefs: loadTypeDefs(),
    resolvers: [scalarResolvers, authResolvers, platformResolvers, fleetResolvers],
    resolverValidationOptions: { requireResolversToMatchSchema: 'error' },
  });
  return applyAccessPolicy<RequestContext>(schema);
}
