#!/usr/bin/env node
/*
 * `prisma generate` for both Prisma schemas. Prisma's CLI insists on locating its native schema
 * engine even for `generate`, which never runs it, and would download one (impossible offline).
 * Pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file satisfies the check; migrations run
 * through the WebAssembly engine instead (src/migrations).
 */
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1' };
env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;

for (const schema of ['prisma/platform.prisma', 'prisma/tenant.prisma']) {
  const result = spawnSync(process.execPath, [require.resolve('prisma/build/index.js'), 'generate', '--schema', schema], {
    cwd: root,
    env,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    console.error(`prisma generate failed for ${schema}:\n${result.stdout}${result.stderr}`);
    process.exit(result.status ?? 1);
  }
}
console.log('generated Prisma clients: src/generated/prisma/{platform,tenant}');
