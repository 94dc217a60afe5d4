import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { authResolvers } from '../auth/auth.resolvers';
import { SCHEMA_DIR } from '../config/paths';
import { apiKeyResolvers } from '../api-keys/api-keys.resolvers';
import { dispatchResolvers } from '../dispatch/dispatch.resolvers';
import { stopsResolvers } from '../dispatch/stops.resolvers';
import { fleetResolvers } from '../fleet/fleet.resolvers';
import { recordsResolvers } from '../records/records.resolvers';
import { persistedQueryResolvers } from '../persisted-queries/persisted-queries.resolvers';
import { platformResolvers } from '../provisioning/platform.resolvers';
import { quotaResolvers } from '../quotas/quotas.resolvers';
import { webhookResolvers } from '../webhooks/webhooks.resolvers';
import { notificationResolvers } from '../notifications/notifications.resolvers';
import { subscriptionResolvers } from '../subscriptions/trip-subscriptions';
import { applyAccessPolicy } from './access-policy';
import { withExecutionDeadline } from './execution-limits';
import { withSecretFields } from '../idempotency/secret-fields';
import type { RequestContext } from './context';
import { scalarResolvers } from './scalars';

/** The SDL files in schema/, the contract everything else is generated from. */
export function loadTypeDefs(dir = SCHEMA_DIR): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.graphql'))
    .sort()
    .map((file) => readFileSync(path.join(dir, file), 'utf8'));
}

/**
 * The contract alone, without resolvers or policy wrappers: what validation of a document needs.
 * `npm run schema:check` builds it from a changed SDL folder, which the resolvers (required to
 * match the schema) would refuse before anything could be checked.
 */
export function buildContractSchema(dir = SCHEMA_DIR): GraphQLSchema {
  return makeExecutableSchema({ typeDefs: loadTypeDefs(dir) });
}

/**
 * SDL + each capability's resolvers. The SDL's directives are enforced by wrapping resolvers:
 * field rate limits first, the execution deadline around them, then the access policy outside,
 * so a caller without access is refused before spending any rate-limit budget. `@secret` fields
 * mark their request's answer as one never stored for an idempotent replay.
 */
export function buildSchema(
  options: {
    fieldRateLimits?: (schema: GraphQLSchema) => GraphQLSchema;
    /** MAX_EXECUTION_MS: fields resolving objects stop past it (execution-limits.ts). */
    maxExecutionMs?: number;
  } = {},
): GraphQLSchema {
  const schema = makeExecutableSchema({
    typeDefs: loadTypeDefs(),
    resolvers: [scalarResolvers, authResolvers, platformResolvers, fleetResolvers, dispatchResolvers, stopsResolvers, recordsResolvers, apiKeyResolvers, persistedQueryResolvers, quotaResolvers, notificationResolvers, webhookResolvers, subscriptionResolvers],
    resolverValidationOptions: { requireResolversToMatchSchema: 'error' },
  });
  const marked = withSecretFields(schema);
  const limited = options.fieldRateLimits ? options.fieldRateLimits(marked) : marked;
  const timed = options.maxExecutionMs ? withExecutionDeadline(limited, options.maxExecutionMs) : limited;
  return applyAccessPolicy<RequestContext>(timed);
}
