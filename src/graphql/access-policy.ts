import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLFieldConfig, type GraphQLSchema } from 'graphql';
import { roleAtLeast, type MemberRole, type Principal } from '../auth/principal';
import { AppError, ErrorCode } from '../errors/app-error';

/*
 * Access policy is declared in the SDL (schema/policy.graphql) on every root field and enforced
 * here, before the field's resolver runs. A root field without exactly one policy directive is a
 * build error, not an open door.
 */

export type AccessPolicy =
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'platformAdmin' }
  | { kind: 'auth'; requires: MemberRole; apiKeys: boolean };

const POLICY_DIRECTIVES = ['public', 'authenticated', 'platformAdmin', 'auth'] as const;

function policiesOf(schema: GraphQLSchema, field: GraphQLFieldConfig<unknown, unknown>): AccessPolicy[] {
  const policies: AccessPolicy[] = [];
  for (const name of POLICY_DIRECTIVES) {
    for (const args of getDirective(schema, field, name) ?? []) {
      if (name === 'auth') {
        const { requires, apiKeys } = args as { requires: MemberRole; apiKeys?: boolean };
        policies.push({ kind: 'auth', requires, apiKeys: apiKeys ?? true });
      } else {
        policies.push({ kind: name });
      }
    }
  }
  return policies;
}

function rootTypeNames(schema: GraphQLSchema): string[] {
  return [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]
    .filter((type) => type !== null && type !== undefined)
    .map((type) => type.name);
}

/** "Query.vehicles"-style names of root fields with no policy, or with more than one. */
export function fieldsWithoutExactlyOnePolicy(schema: GraphQLSchema): string[] {
  const offenders: string[] = [];
  for (const typeName of rootTypeNames(schema)) {
    const type = schema.getType(typeName);
    if (!type || !('getFields' in type)) continue;
    for (const field of Object.values(type.getFields())) {
      if (!field.astNode) continue;
      const count = policiesOf(schema, field as unknown as GraphQLFieldConfig<unknown, unknown>).length;
      if (count !== 1) offenders.push(`${typeName}.${field.name}`);
    }
  }
  return offenders;
}

export function enforcePolicy(policy: AccessPolicy, principal: Principal): void {
  if (policy.kind === 'public') return;
  if (principal.kind === 'anonymous') {
    throw new AppError(ErrorCode.UNAUTHENTICATED, 'Sign in first: send "Authorization: Bearer <accessToken>"');
  }
  if (policy.kind === 'authenticated') return;
  if (policy.kind === 'platformAdmin') {
    if (principal.kind !== 'platformAdmin') throw new AppError(ErrorCode.FORBIDDEN, 'Platform admins only');
    return;
  }
  if (principal.kind !== 'member' && principal.kind !== 'apiKey') {
    throw new AppError(ErrorCode.FORBIDDEN, 'This operation acts on a tenant; sign in as a member of that tenant');
  }
  if (principal.kind === 'apiKey' && !policy.apiKeys) {
    throw new AppError(ErrorCode.FORBIDDEN, 'API keys cannot do this; sign in as a member');
  }
  if (!roleAtLeast(principal.role, policy.requires)) {
    const who = principal.kind === 'apiKey' ? `this API key's role is ${principal.role}` : `you are ${principal.role}`;
    throw new AppError(ErrorCode.FORBIDDEN, `Requires the ${policy.requires} role or higher; ${who}`);
  }
}

/** Wraps every root field's resolver with its policy check; throws if any field lacks one. */
export function applyAccessPolicy<TContext extends { principal: Principal }>(schema: GraphQLSchema): GraphQLSchema {
  const offenders = fieldsWithoutExactlyOnePolicy(schema);
  if (offenders.length > 0) {
    throw new Error(`root fields need exactly one access policy directive: ${offenders.join(', ')}`);
  }
  return mapSchema(schema, {
    [MapperKind.ROOT_FIELD]: (fieldConfig) => {
      const [policy] = policiesOf(schema, fieldConfig as GraphQLFieldConfig<unknown, unknown>);
      if (!policy) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      return {
        ...fieldConfig,
        resolve: (source, args, context: TContext, info) => {
          enforcePolicy(policy, context.principal);
          return resolve(source, args, context, info);
        },
      };
    },
  });
}
