import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, validate } from 'graphql';
import { buildSchema } from '../../src/graphql/schema';

/*
 * The runbooks tell operators what to send at a bad moment; a snippet that no longer matches
 * the schema would fail them then. Every ```graphql block in docs/runbooks/*.md (indented ones
 * in lists too) must parse and validate against the server's schema.
 */

const RUNBOOKS = path.resolve(__dirname, '../../docs/runbooks');

function graphqlBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  for (const match of markdown.matchAll(/^([ \t]*)```graphql\n([\s\S]*?)^\1```/gm)) {
    const indent = match[1] ?? '';
    blocks.push((match[2] ?? '').split('\n').map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line)).join('\n'));
  }
  return blocks;
}

const files = readdirSync(RUNBOOKS).filter((file) => file.endsWith('.md')).sort();
const snippets = files.flatMap((file) => graphqlBlocks(readFileSync(path.join(RUNBOOKS, file), 'utf8')).map((block, index) => ({ file, index, block })));

describe('GraphQL snippets in docs/runbooks', () => {
  const schema = buildSchema();

  it('finds the runbooks and their snippets', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'onboard-tenant.md', 'migrate-fleet.md', 'suspend-restore.md', 'export-delete.md', 'rotate-secrets.md', 'failed-provisioning.md', 'dashboard.md']));
    expect(snippets.length).toBeGreaterThanOrEqual(10);
  });

  it.each(snippets.map((snippet) => [`${snippet.file} #${snippet.index + 1}`, snippet.block] as const))('%s parses and validates', (_name, block) => {
    const errors = validate(schema, parse(block)).map((error) => error.message);
    expect(errors).toEqual([]);
  });
});
