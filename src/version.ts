// Where the package is installed (dist/ or the bundle lives inside it), and its version.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'bootstrap-agent' && pkg.version) return (cached = { root: dir, version: pkg.version });
    } catch {
      // not here: look one folder up
    }
    dir = dirname(dir);
  }
  return (cached = { root: dirname(fileURLToPath(import.meta.url)), version: '0.0.0' });
}

export function readVersion(): string {
  return find().version;
}

/** The package's root folder (holds systemd/, etc/, phases/, schema/). */
export function packageRoot(): string {
  return find().root;
}
