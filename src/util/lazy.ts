// Modules loaded where they are first used, not at the top of the module that uses them: bundled
// into one script, every top-level import runs at every start, and these cost each start of a
// command that never uses them (product.get, server.status) up to 12 ms apiece on Node 24: crypto
// 12, child_process 7, net 6, proper-lockfile with graceful-fs ~4 (bench/startup.mjs,
// docs/packages.md; os, 2, is loaded anyway when the config names no server). What is returned is
// the module itself (require's cache after the first call), never a stand-in; types come from
// `import type` at the call sites, free at run time.

import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export const childProcess = (): typeof import('node:child_process') => load('node:child_process');
export const crypto = (): typeof import('node:crypto') => load('node:crypto');
export const net = (): typeof import('node:net') => load('node:net');
export const os = (): typeof import('node:os') => load('node:os');

/** proper-lockfile; a dynamic import, which the bundler turns into a require on first call. */
export async function properLockfile(): Promise<typeof import('proper-lockfile')> {
  return (await import('proper-lockfile')).default;
}
