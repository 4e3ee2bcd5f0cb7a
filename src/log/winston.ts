// Loads winston on first use. In the CLI bundle this module is replaced by a plain require()
// that esbuild bundles (scripts/build.mjs): winston's modules are then initialised only when
// something is logged, read from the bundle (and, for the commands that run the pipeline,
// compiled from its code cache) instead of resolved and read from node_modules (~30 ms on every
// run that logs a line).

import { createRequire } from 'node:module';

export function loadWinston(): typeof import('winston') {
  return createRequire(import.meta.url)('winston') as typeof import('winston');
}
