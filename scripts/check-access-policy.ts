/*
 * Fails the build when a Query, Mutation or Subscription field in schema/ has no access policy
 * directive (or more than one), or a field below the root with its own policy is non-null. The server refuses to start in that case too; this reports it
 * before anything runs.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import { fieldsWithoutExactlyOnePolicy, restrictedFieldsThatAreNonNull } from '../src/graphql/access-policy';
import { loadTypeDefs } from '../src/graphql/schema';

const schema = makeExecutableSchema({ typeDefs: loadTypeDefs() });
const offenders = fieldsWithoutExactlyOnePolicy(schema);
if (offenders.length > 0) {
  console.error(`Root fields need exactly one of @public, @authenticated, @platformAdmin, @auth(requires:), other fields at most one:\n  ${offenders.join('\n  ')}`);
  process.exit(1);
}
const nonNull = restrictedFieldsThatAreNonNull(schema);
if (nonNull.length > 0) {
  console.error(`Fields with their own access policy must be nullable, or refusing them nulls their parent too:\n  ${nonNull.join('\n  ')}`);
  process.exit(1);
}
console.log('access policy: every root field declares exactly one policy, no field more than one, restricted fields are nullable');
