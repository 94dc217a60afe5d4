import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLSchema } from 'graphql';

/*
 * Fields marked `@secret` in the SDL (an API key's secret, session tokens, invitation codes) are
 * shown once. A request that resolved one is remembered here, by its context (nothing outlives
 * the request), so the idempotency plugin never stores that answer for a replay.
 */

const resolvedSecrets = new WeakSet<object>();

export function resolvedSecret(context: object): boolean {
  return resolvedSecrets.has(context);
}

/** Wraps every `@secret` field so that resolving it marks the request's context. */
export function withSecretFields(schema: GraphQLSchema): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig) => {
      if (!getDirective(schema, fieldConfig, 'secret')?.length) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      return {
        ...fieldConfig,
        // Marked before resolving: a secret field's parent only resolves when the operation
        // succeeded, and marking too often withholds an answer, never leaks one.
        resolve: (source, args, context: object, info) => {
          resolvedSecrets.add(context);
          return resolve(source, args, context, info);
        },
      };
    },
  });
}

/** "Type.field" of every `@secret` field, for the test that keeps the list honest. */
export function secretFieldsOf(schema: GraphQLSchema): string[] {
  const found: string[] = [];
  mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      if (getDirective(schema, fieldConfig, 'secret')?.length) found.push(`${typeName}.${fieldName}`);
      return fieldConfig;
    },
  });
  return found.sort();
}
