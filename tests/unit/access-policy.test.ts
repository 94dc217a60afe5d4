import { readFileSync } from 'node:fs';
import path from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { graphql } from 'graphql';
import type { Principal } from '../../src/auth/principal';
import { applyAccessPolicy, fieldsWithoutExactlyOnePolicy, restrictedFieldsThatAreNonNull } from '../../src/graphql/access-policy';

const POLICY_SDL = readFileSync(path.join(__dirname, '../../schema/policy.graphql'), 'utf8');

const schemaOf = (sdl: string) =>
  makeExecutableSchema({
    typeDefs: [POLICY_SDL, sdl],
    resolvers: { Query: { account: () => ({ name: 'n', secret: 's' }), open: () => 'yes' } },
  });

describe('access policy in the SDL', () => {
  it('names root fields with no policy, and any field with two', () => {
    const schema = schemaOf(`
      type Account { name: String! secret: String @platformAdmin @public plain: String }
      type Query { account: Account @authenticated open: String @public noPolicy: String }
    `);
    expect(fieldsWithoutExactlyOnePolicy(schema).sort()).toEqual(['Account.secret', 'Query.noPolicy']);
  });

  it('names fields below the root that carry a policy and are non-null, and the server refuses to start with one', () => {
    const sdl = `
      type Account { name: String! secret: String! @platformAdmin note: String @platformAdmin }
      type Query { account: Account! @authenticated open: String @public }
    `;
    expect(restrictedFieldsThatAreNonNull(schemaOf(sdl))).toEqual(['Account.secret']);
    expect(() => applyAccessPolicy(schemaOf(sdl))).toThrow('fields with their own access policy must be nullable: Account.secret');
  });

  it('enforces a policy declared on a field below the root, whatever the root admits', async () => {
    const schema = applyAccessPolicy<{ principal: Principal }>(
      schemaOf(`
        type Account { name: String! secret: String @platformAdmin }
        type Query { account: Account @public open: String @public }
      `),
    );
    const anonymous = { principal: { kind: 'anonymous' } as Principal };
    const result = await graphql({ schema, source: '{ account { name secret } }', contextValue: anonymous });
    expect(result.data).toEqual({ account: { name: 'n', secret: null } });
    expect(result.errors?.map((error) => [error.path, error.extensions.code])).toEqual([[['account', 'secret'], 'UNAUTHENTICATED']]);
  });
});
