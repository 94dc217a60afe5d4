// Node 20 has the WebAssembly global, but its type declarations live in TypeScript's DOM lib,
// which this server does not load. The subset the schema-engine loader uses:
declare namespace WebAssembly {
  type ModuleImports = Record<string, unknown>;
  type Imports = Record<string, ModuleImports>;
  type Exports = Record<string, unknown>;
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
}
