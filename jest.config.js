const tsOptions = { isolatedModules: true };

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type errors are caught by `npm run typecheck`; here ts-jest only transpiles, to CommonJS
    // throughout: Prisma's generated client loads its query compiler with import(), which Jest's
    // CommonJS runtime only serves as require().
    '^.+\\.ts$': ['ts-jest', { tsconfig: { ...tsOptions, module: 'commonjs', moduleResolution: 'node10' }, diagnostics: false }],
    // Prisma's schema-engine bindings are an ES module; Jest's CommonJS runtime needs them transpiled.
    'schema_engine_bg\\.js$': ['ts-jest', { tsconfig: { ...tsOptions, allowJs: true, module: 'commonjs', moduleResolution: 'node10' }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!@prisma/schema-engine-wasm/)'],
  globalSetup: '<rootDir>/tests/support/global-setup.ts',
  globalTeardown: '<rootDir>/tests/support/global-teardown.ts',
  // Known-slow files first: without jest's timing cache (a fresh clone) one may otherwise start last.
  testSequencer: '<rootDir>/tests/support/test-sequencer.js',
  // Two cores: two workers, each test file with its own database and server.
  maxWorkers: 2,
  testTimeout: 60_000,
};
