import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, isNonNullType, isObjectType, type GraphQLField, type GraphQLFieldConfig, type GraphQLSchema } from 'graphql';
import { roleAtLeast, type MemberRole, type Principal } from '../auth/principal';
import { AppError, ErrorCode } from '../errors/app-error';

/*
 * Access policy is declared in the SDL (schema/policy.graphql) on every root field and enforced
 * here, before the field's resolver runs. A root field without exactly one policy directive is a
 * build error, not an open door. A field of an object type may carry one too, narrowing who sees
 * it below a root field that admits more callers (Tenant.schemaName under `me`, say); such a
 * field is nullable, so that refusing it costs the caller that field only.
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

/** The policy a field declares (root fields declare exactly one), or undefined. */
export function policyOfField(schema: GraphQLSchema, field: GraphQLFieldConfig<unknown, unknown> | GraphQLField<unknown, unknown>): AccessPolicy | undefined {
  return policiesOf(schema, field as unknown as GraphQLFieldConfig<unknown, unknown>)[0];
}

function rootTypeNames(schema: GraphQLSchema): string[] {
  return [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]
    .filter((type) => type !== null && type !== undefined)
    .map((type) => type.name);
}

/**
 * "Query.vehicles"-style names of root fields with no policy, and of any field with more than
 * one.
 */
export function fieldsWithoutExactlyOnePolicy(schema: GraphQLSchema): string[] {
  const roots = new Set(rootTypeNames(schema));
  const offenders: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      if (!field.astNode) continue;
      const count = policiesOf(schema, field as unknown as GraphQLFieldConfig<unknown, unknown>).length;
      if (count > 1 || (count === 0 && roots.has(type.name))) offenders.push(`${type.name}.${field.name}`);
    }
  }
  return offenders;
}

/**
 * "Tenant.schemaName"-style names of fields below the root that narrow who sees them but are
 * non-null. Refusing such a field nulls it; were it non-null, the null would take its parent
 * along (`me { tenant { slug schemaName } }` would lose the slug too), so they must be nullable.
 */
export function restrictedFieldsThatAreNonNull(schema: GraphQLSchema): string[] {
  const roots = new Set(rootTypeNames(schema));
  const offenders: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__') || roots.has(type.name)) continue;
    for (const field of Object.values(type.getFields())) {
      if (!field.astNode || !isNonNullType(field.type)) continue;
      if (policiesOf(schema, field as unknown as GraphQLFieldConfig<unknown, unknown>).length > 0) offenders.push(`${type.name}.${field.name}`);
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

/** Wraps every field that declares a policy with its check; throws if a root field lacks one. */
export function applyAccessPolicy<TContext extends { principal: Principal }>(schema: GraphQLSchema): GraphQLSchema {
  const offenders = fieldsWithoutExactlyOnePolicy(schema);
  if (offenders.length > 0) {
    throw new Error(`root fields need exactly one access policy directive, other fields at most one: ${offenders.join(', ')}`);
  }
  const nonNull = restrictedFieldsThatAreNonNull(schema);
  if (nonNull.length > 0) throw new Error(`fields with their own access policy must be nullable: ${nonNull.join(', ')}`);
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      const [policy] = policiesOf(schema, fieldConfig as GraphQLFieldConfig<unknown, unknown>);
      if (!policy) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      const subscribe = fieldConfig.subscribe;
      return {
        ...fieldConfig,
        resolve: (source, args, context: TContext, info) => {
          enforcePolicy(policy, context.principal);
          return resolve(source, args, context, info);
        },
        // A subscription field is checked before it starts listening, too.
        ...(subscribe
          ? {
              subscribe: (source: unknown, args: Record<string, unknown>, context: TContext, info: Parameters<typeof subscribe>[3]) => {
                enforcePolicy(policy, context.principal);
                return subscribe(source, args, context, info);
              },
            }
          : {}),
      };
    },
  });
}
