#!/usr/bin/env node
/*
 * npm run tenants:migrate / npm run smoke: one command for a checkout and for the production
 * image. A checkout runs the TypeScript source through tsx (never a stale build); the image has
 * neither tsx nor the sources, only the compiled dist/scripts/<name>.js, which runs instead.
 *
 *   node scripts/operator.js <script-name> [args...]
 */
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const [name, ...args] = process.argv.slice(2);
if (!name || !/^[a-z-]+$/.test(name)) {
  console.error('usage: node scripts/operator.js <script-name> [args...]');
  process.exit(2);
}

function tsxAvailable() {
  try {
    require.resolve('tsx', { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

const source = path.join(root, 'scripts', `${name}.ts`);
const compiled = path.join(root, 'dist', 'scripts', `${name}.js`);
let nodeArgs;
if (existsSync(source) && tsxAvailable()) nodeArgs = ['--import', 'tsx', source];
else if (existsSync(compiled)) nodeArgs = [compiled];
else {
  console.error(`${name}: neither scripts/${name}.ts with tsx (a checkout after npm install) nor dist/scripts/${name}.js (npm run build, or the production image) is here`);
  process.exit(1);
}
const result = spawnSync(process.execPath, [...nodeArgs, ...args], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`${name}: could not run node: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
