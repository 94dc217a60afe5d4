import { Lexer, Source, TokenKind, type Token } from 'graphql';
import { AppError, ErrorCode } from '../errors/app-error';

/*
 * Checks on a document's text before anything parses or validates it, in one pass of graphql's
 * own lexer. Validation is where a small hostile document costs the most: graphql-js compares
 * every pair of same-named fields in a selection set (OverlappingFieldsCanBeMerged), so 740
 * copies of `me{id}` in 5 KB took ~70 ms to refuse. Counting on the token stream bounds that
 * work before it starts, at the cost of a scan (~µs per KB); the count stops at the first limit.
 *
 * Counted (text only: a fragment spread is one selection, however large the fragment):
 * - tokens;
 * - directives (every `@`; graphql-armor's count missed those on a repeated fragment spread);
 * - selections: fields, fragment spreads and inline fragments;
 * - fragment definitions;
 * - what each operation expands to once its fragments are inlined (spreads of fragments that
 *   spread others multiply);
 * - the same response name (alias, or field name) repeated: in one selection set (inline
 *   fragments included in their parent's set, as graphql-js merges them), and, for fields with
 *   a selection set of their own, anywhere in the document (fragments merge into sets the text
 *   does not show). Same-named fields with sub-selections are what validation compares
 *   pairwise and recursively: the quadratic case.
 *
 * Nothing here decides whether a document is valid; a lexing error is left for the parser to
 * report, with its position.
 */

export interface DocumentShapeLimits {
  maxTokens: number;
  maxDirectives: number;
  maxSelections: number;
  maxFragments: number;
  /** How often one response name may appear in one selection set, and with a sub-selection in the document. */
  maxFieldRepeats: number;
}

/** What a brace opened: a selection set (its own set of names, or its parent's), or a value. */
type Brace = { kind: 'selections'; names: Map<string, number>; lastField: string | null } | { kind: 'value' };

export function assertDocumentShape(document: string, limits: DocumentShapeLimits): void {
  const lexer = new Lexer(new Source(document));
  let tokens = 0;
  let selections = 0;
  let fragments = 0;
  let directives = 0;
  let parens = 0;
  const braces: Brace[] = [];
  // A brace right after `... on Type` or a bare `...` belongs to an inline fragment.
  let inlineFragmentPending = false;
  let previous: Token | null = null;
  // Per response name, how many of its fields have a selection set, in the whole document.
  const withSelections = new Map<string, number>();
  // Each definition (operations, then fragments by name): its own selections and the fragments
  // it spreads, to bound what it expands to once fragments are inlined.
  const definitions = new Map<string, Definition>();
  let definition: Definition | undefined;
  let fragmentNamePending = false;
  const startDefinition = (key: string) => {
    definition = { own: 0, spreads: [] };
    definitions.set(key, definition);
  };
  const refuse = (message: string, code: ErrorCode = ErrorCode.TOO_MANY_SELECTIONS) => {
    throw new AppError(code, message, { httpStatus: 400 });
  };
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      tokens += 1;
      if (tokens > limits.maxTokens) refuse(`Document has more than ${limits.maxTokens} tokens`, ErrorCode.TOO_MANY_TOKENS);
      const current = braces.at(-1);
      switch (token.kind) {
        case TokenKind.PAREN_L:
          parens += 1;
          break;
        case TokenKind.PAREN_R:
          parens = Math.max(0, parens - 1);
          break;
        case TokenKind.BRACE_L:
          if (braces.length === 0 && parens === 0 && !definition) startDefinition(`operation ${definitions.size}`);
          if (parens > 0 || current?.kind === 'value') {
            braces.push({ kind: 'value' });
          } else if (inlineFragmentPending && current?.kind === 'selections') {
            braces.push({ kind: 'selections', names: current.names, lastField: null });
            inlineFragmentPending = false;
          } else {
            // The selection set of the field named last at this level (none at an operation's or fragment's root).
            const owner = current?.kind === 'selections' ? current.lastField : null;
            if (owner !== null) {
              const times = (withSelections.get(owner) ?? 0) + 1;
              withSelections.set(owner, times);
              if (times > limits.maxFieldRepeats) {
                refuse(`"${owner}" has a selection set more than ${limits.maxFieldRepeats} times in the document; select it fewer times`);
              }
            }
            braces.push({ kind: 'selections', names: new Map(), lastField: null });
          }
          break;
        case TokenKind.BRACE_R:
          braces.pop();
          if (braces.length === 0) definition = undefined;
          break;
        case TokenKind.AT:
          directives += 1;
          if (directives > limits.maxDirectives) refuse(`Document has more than ${limits.maxDirectives} directives`, ErrorCode.TOO_MANY_DIRECTIVES);
          break;
        case TokenKind.SPREAD:
          if (current?.kind === 'selections' && parens === 0) {
            selections += 1;
            current.lastField = null;
            // `...Name` is a spread; `... on T {` or `... {` (or `... @dir {`) an inline fragment.
            const next = lexer.lookahead();
            inlineFragmentPending = next.kind !== TokenKind.NAME || next.value === 'on';
            if (!definition) break;
            if (inlineFragmentPending) definition.own += 1;
            else definition.spreads.push(next.value);
          }
          break;
        case TokenKind.NAME:
          if (fragmentNamePending) {
            fragmentNamePending = false;
            startDefinition(`fragment ${token.value}`);
          } else if (braces.length === 0 && parens === 0 && token.value === 'fragment') {
            fragments += 1;
            if (fragments > limits.maxFragments) refuse(`Document defines more than ${limits.maxFragments} fragments`);
            fragmentNamePending = true;
          } else if (braces.length === 0 && parens === 0 && !definition && OPERATION_KEYWORDS.has(token.value)) {
            startDefinition(`operation ${definitions.size}`);
          } else if (current?.kind === 'selections' && parens === 0 && isResponseName(previous)) {
            selections += 1;
            if (selections > limits.maxSelections) refuse(`Document has more than ${limits.maxSelections} selections (fields and fragments)`);
            if (definition) definition.own += 1;
            current.lastField = token.value;
            const seen = (current.names.get(token.value) ?? 0) + 1;
            current.names.set(token.value, seen);
            if (seen > limits.maxFieldRepeats) {
              refuse(`"${token.value}" is selected more than ${limits.maxFieldRepeats} times in one selection set; select it once`);
            }
          }
          break;
        default:
          break;
      }
      previous = token;
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    // A lexing error: the parser reports it.
    return;
  }
  const expanded = expandedSizes(definitions);
  for (const [key, size] of expanded) {
    if (key.startsWith('operation ') && size > MAX_EXPANDED_SELECTIONS) {
      refuse(`The operation expands to more than ${MAX_EXPANDED_SELECTIONS} selections through its fragments; spread fewer`);
    }
  }
}

interface Definition {
  /** Fields and inline fragments written in it. */
  own: number;
  /** The fragments it spreads, once per spread. */
  spreads: string[];
}

const OPERATION_KEYWORDS = new Set(['query', 'mutation', 'subscription']);

/**
 * Past this, an operation is refused for what its fragments multiply to. Spreads of a fragment
 * that spreads another many times grow exponentially (twelve fragments, each spreading the next
 * twenty times, took 3–11 ms to refuse in graphql-armor's depth rule, in 1.7 KB); the cost
 * estimator gives up at the same number of nodes.
 */
export const MAX_EXPANDED_SELECTIONS = 10_000;

/** Each definition's size with every fragment spread inlined (cycles and unknown names count nothing: validation refuses them). */
function expandedSizes(definitions: Map<string, Definition>): Map<string, number> {
  const sizes = new Map<string, number>();
  const visiting = new Set<string>();
  const sizeOf = (key: string): number => {
    const known = sizes.get(key);
    if (known !== undefined) return known;
    const found = definitions.get(key);
    if (!found || visiting.has(key)) return 0;
    visiting.add(key);
    let size = found.own;
    // Capped, so a size cannot grow past what the comparison needs to know (or overflow).
    for (const spread of found.spreads) size = Math.min(size + sizeOf(`fragment ${spread}`), MAX_EXPANDED_SELECTIONS + 1);
    visiting.delete(key);
    sizes.set(key, size);
    return size;
  };
  for (const key of definitions.keys()) sizeOf(key);
  return sizes;
}

/**
 * Whether a name inside a selection set (outside arguments) starts a selection: not a fragment
 * spread's name, `on` or a type condition, a directive, or the field name after an alias (the
 * alias before it was counted).
 */
function isResponseName(previous: Token | null): boolean {
  if (!previous) return true;
  if (previous.kind === TokenKind.SPREAD || previous.kind === TokenKind.AT || previous.kind === TokenKind.COLON) return false;
  return !(previous.kind === TokenKind.NAME && previous.value === 'on' && previous.prev?.kind === TokenKind.SPREAD);
}
