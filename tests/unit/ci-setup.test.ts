import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

/*
 * The README's quick start, .ci/run and the GitHub workflow say the same thing: two command
 * lines on a fresh machine, the second of which is what CI runs, here and on GitHub (Node 20
 * and 22, with PostgreSQL and Redis as services).
 */

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

function quickStartCommands(): string[] {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.split('\n').filter((line) => line.trim() !== '');
}

interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<
    string,
    {
      strategy?: { matrix?: { node?: number[] } };
      services?: Record<string, { image: string; ports: string[] }>;
      steps: { uses?: string; run?: string; with?: Record<string, unknown> }[];
    }
  >;
}

describe('the quick start, .ci/run and the GitHub workflow agree', () => {
  it('the quick start has exactly two command lines: run the server, run the tests', () => {
    expect(quickStartCommands()).toEqual(['npm install && npm start', 'npm install && npm test']);
  });

  it('.ci/run installs the lock as committed, then runs the README test command, and refuses a changed checkout', () => {
    const lines = read('.ci/run')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    const [, testCommand] = quickStartCommands();
    expect(lines).toContain('npm ci');
    expect(lines).toContain(testCommand);
    expect(lines.indexOf('npm ci')).toBeLessThan(lines.indexOf(testCommand!));
    expect(lines.at(-1)).toBe('check_clean "npm install && npm test"');
  });

  it('the workflow parses, runs .ci/run on Node 20 and 22, with PostgreSQL and Redis services on their usual ports', () => {
    const workflow = parseYaml(read('.github/workflows/ci.yml')) as Workflow;
    expect(Object.keys(workflow.on)).toEqual(expect.arrayContaining(['push', 'pull_request']));
    const jobs = Object.values(workflow.jobs);
    expect(jobs).toHaveLength(1);
    const [job] = jobs;
    expect(job!.strategy?.matrix?.node).toEqual([20, 22]);
    expect(job!.services?.postgres).toMatchObject({ image: expect.stringMatching(/^postgres:\d+/), ports: ['5432:5432'] });
    expect(job!.services?.redis).toMatchObject({ image: expect.stringMatching(/^redis:7/), ports: ['6379:6379'] });
    const setupNode = job!.steps.find((step) => step.uses?.startsWith('actions/setup-node@'));
    expect(setupNode?.with?.['node-version']).toBe('${{ matrix.node }}');
    expect(job!.steps.at(-1)?.run).toBe('bash .ci/run');
  });
});
