import { startTracing } from './tracing';

/**
 * Starts tracing (when configured) as a side effect of being imported: src/main.ts imports this
 * module before anything else, so the instrumentations are in place before http, express,
 * graphql and pg load (CommonJS runs imports in order). To trace another entry point, import
 * this first there too, or preload it: `node --require ./dist/src/observability/start-tracing.js`.
 */
export const tracing = startTracing(process.env);
