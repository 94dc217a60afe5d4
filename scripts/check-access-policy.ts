/*
 * Fails the build when a Query, Mutation or Subscription field in schema/ has no access policy
 * directive (or more than one). The server refuses to start in that case too; this reports it
 * before anything runs.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import { fieldsWithoutExactlyOnePolicy } from '../src/graphql/access-policy';
import { loadTypeDefs } from '../src/graphql/schema';

const schema = makeExecutableSchema({ typeDefs: loadTypeDefs() });
const offenders = fieldsWithoutExactlyOnePolicy(schema);
if (offenders.length > 0) {
  console.error(`Root fields need exactly one of @public, @authenticated, @platformAdmin, @auth(requires:), other fields at most one:\n  ${offenders.join('\n  ')}`);
  process.exit(1);
}
console.log('access policy: every root field declares exactly one policy, no field more than one');
