import { ConfigError } from '../src/config/config';
import { errorMessageOf } from '../src/observability/logger';

/**
 * Runs an operator script's `main`: its exit code is the one it sets (0 by default), and any
 * failure prints one readable line to stderr and exits 1, never a bare `undefined`.
 */
export function runOperatorCommand(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    // A configuration error lists every problem, one per line; anything else gets one line.
    process.stderr.write(`${name}: ${error instanceof ConfigError ? error.message : errorMessageOf(error)}\n`);
    process.exit(1);
  });
}
