import {
  TypeInfo,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isRequiredInputField,
  typeFromAST,
  visit,
  visitWithTypeInfo,
  type ASTNode,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import type { BreakingProblem } from './schema-compatibility';

/*
 * What validation cannot see: a document that still validates against the new schema can break
 * its partner anyway, through what the document does not spell out. Compared with the schema
 * deployed today (the base), for one document:
 *
 * - a field it selects whose type widened (String! -> String, Int -> Float): the partner's
 *   client, often generated from the old types, gets what it was promised never to get;
 * - an input type it receives through a variable ($input: CreateTripInput!) that gained a
 *   required field, or changed a field's type so that old values no longer fit, or an enum it
 *   may pass that lost a value: the variables the partner sends stop coercing.
 *
 * Literals in the document are validated already; only what arrives through variables and what
 * leaves through selections is walked here.
 */

/** Problems of this (valid) document under the new schema that it did not have under the base. */
export function changesUnderOperation(base: GraphQLSchema, schema: GraphQLSchema, document: DocumentNode): BreakingProblem[] {
  const problems: BreakingProblem[] = [];
  const at = (node: ASTNode) => (node.loc ? [{ line: node.loc.startToken.line, column: node.loc.startToken.column }] : []);
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const parent = typeInfo.getParentType();
        const field = typeInfo.getFieldDef();
        if (!parent || !field) return;
        const before = base.getType(parent.name);
        const old = isObjectType(before) || isInterfaceType(before) ? before.getFields()[field.name] : undefined;
        if (old && !outputStillFits(old.type, field.type)) {
          problems.push({
            message: `${parent.name}.${field.name} changed type from ${String(old.type)} to ${String(field.type)}; this operation selects it`,
            locations: at(node),
          });
        }
      },
      VariableDefinition(node) {
        const type = typeFromAST(schema, node.type);
        if (!type) return;
        const variable = `$${node.variable.name.value}`;
        for (const message of inputChanges(base, getNamedType(type), new Set())) {
          problems.push({ message: `${message}; this operation receives it through ${variable}`, locations: at(node) });
        }
      },
    }),
  );
  return problems;
}

/** Does every value the old output type could give still come as the client expects? */
function outputStillFits(old: GraphQLOutputType, now: GraphQLOutputType): boolean {
  if (isNonNullType(old)) return isNonNullType(now) && outputStillFits(old.ofType, now.ofType);
  if (isNonNullType(now)) return outputStillFits(old, now.ofType);
  if (isListType(old)) return isListType(now) && outputStillFits(old.ofType, now.ofType);
  if (isListType(now)) return false;
  return old.name === now.name;
}

/** Does every value the old input type accepted still coerce to the new one? */
function inputStillAccepts(old: GraphQLInputType, now: GraphQLInputType): boolean {
  if (isNonNullType(now)) return isNonNullType(old) && inputStillAccepts(old.ofType, now.ofType);
  if (isNonNullType(old)) return inputStillAccepts(old.ofType, now);
  // A single value coerces to a list of one.
  if (isListType(now)) return inputStillAccepts(isListType(old) ? old.ofType : old, now.ofType);
  if (isListType(old)) return false;
  return old.name === now.name;
}

/** Why old values of this input type (by name in the base) may no longer coerce, walking nested input objects. */
function inputChanges(base: GraphQLSchema, type: GraphQLNamedType, seen: Set<string>): string[] {
  if (seen.has(type.name)) return [];
  seen.add(type.name);
  const before = base.getType(type.name);
  const changes: string[] = [];
  if (isEnumType(type) && isEnumType(before)) {
    const now = new Set(type.getValues().map((value) => value.name));
    for (const value of before.getValues()) {
      if (!now.has(value.name)) changes.push(`${type.name}.${value.name} was removed`);
    }
  }
  if (isInputObjectType(type)) {
    const oldFields = isInputObjectType(before) ? before.getFields() : {};
    for (const name of Object.keys(oldFields)) {
      if (!type.getFields()[name]) changes.push(`${type.name}.${name} was removed`);
    }
    for (const field of Object.values(type.getFields())) {
      const old = oldFields[field.name];
      if (!old && isRequiredInputField(field)) changes.push(`${type.name}.${field.name} was added as a required field`);
      else if (old && isRequiredInputField(field) && !isRequiredInputField(old)) changes.push(`${type.name}.${field.name} became required`);
      else if (old && !inputStillAccepts(old.type, field.type)) {
        changes.push(`${type.name}.${field.name} changed type from ${String(old.type)} to ${String(field.type)}`);
      }
      changes.push(...inputChanges(base, getNamedType(field.type), seen));
    }
  }
  return changes;
}
