import { DateTimeResolver, EmailAddressResolver, JSONObjectResolver } from 'graphql-scalars';
import type { Resolvers } from '../generated/graphql';

export const scalarResolvers: Resolvers = {
  DateTime: DateTimeResolver,
  EmailAddress: EmailAddressResolver,
  JSONObject: JSONObjectResolver,
};
