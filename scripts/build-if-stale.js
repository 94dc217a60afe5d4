#!/usr/bin/env node
/*
 * `npm start` builds only when something the build reads has changed since the last build:
 * generation plus tsc take ~10 s, and most starts change nothing. The inputs' contents (not
 * their times, which a checkout or a copy resets) are hashed into dist/.build-inputs; a build
 * that succeeds records the hash it was made from.
 */
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, readdirSync, readFileSync, writeFileSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const STAMP = path.join(root, 'dist', '.build-inputs');
const INPUT_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'codegen.ts'];
const INPUT_DIRS = ['src', 'scripts', 'schema', 'prisma'];
// Outputs of generation, not inputs to it.
const SKIPPED = new Set([path.join('src', 'generated')]);

function listFiles(relativeDir) {
  const files = [];
  for (const entry of readdirSync(path.join(root, relativeDir), { withFileTypes: true })) {
    const relative = path.join(relativeDir, entry.name);
    if (SKIPPED.has(relative)) continue;
    if (entry.isDirectory()) files.push(...listFiles(relative));
    else if (entry.isFile()) files.push(relative);
  }
  return files;
}

function inputsHash() {
  const hash = createHash('sha256').update(process.version);
  const files = [...INPUT_FILES.filter((file) => existsSync(path.join(root, file))), ...INPUT_DIRS.flatMap(listFiles)].sort();
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(path.join(root, file))).update('\0');
  return hash.digest('hex');
}

function upToDate(hash) {
  const outputs = [path.join(root, 'dist', 'src', 'main.js'), path.join(root, 'src', 'generated')];
  if (!outputs.every((output) => existsSync(output))) return false;
  return existsSync(STAMP) && statSync(STAMP).isFile() && readFileSync(STAMP, 'utf8').trim() === hash;
}

const before = inputsHash();
if (upToDate(before)) {
  console.log('build: dist/ is up to date');
  process.exit(0);
}
const npm = process.env.npm_execpath;
const build = npm
  ? spawnSync(process.execPath, [npm, 'run', 'build'], { cwd: root, stdio: 'inherit' })
  : spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
if (build.status !== 0) process.exit(build.status ?? 1);
// Edited while building: the next start builds again rather than trusting a mixed build.
if (inputsHash() === before) writeFileSync(STAMP, `${before}\n`);
