import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * Whether the selection under the current field reaches `path` (field names, any alias, through
 * inline and named fragments): lets a list resolver fetch a relation in its own statement
 * when, and only when, the query asks for it. `@include`/`@skip` are not evaluated: a field
 * that may be skipped still counts, which at worst joins a relation nobody reads.
 */
export function selectsPath(info: GraphQLResolveInfo, path: readonly string[]): boolean {
  return info.fieldNodes.some((node) => reaches(node.selectionSet, path, info, 0));
}

function reaches(selectionSet: SelectionSetNode | undefined, path: readonly string[], info: GraphQLResolveInfo, depth: number): boolean {
  if (!selectionSet) return false;
  // Fragments can nest; the document's depth limits already bound this, and so does `depth`.
  if (depth > 20) return false;
  const [head, ...rest] = path;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value !== head) continue;
      if (rest.length === 0 || reaches((selection as FieldNode).selectionSet, rest, info, depth + 1)) return true;
    } else {
      const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : info.fragments[selection.name.value];
      if (fragment && reaches(fragment.selectionSet, path, info, depth + 1)) return true;
    }
  }
  return false;
}
