// A fresh temp dir for each test of a describe block, removed after it whatever its outcome.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';

/** Call inside a describe: returns the current test's dir (`bootstrap-<name>-XXXXXX` in the temp dir). */
export function tempDirEach(name: string): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `bootstrap-${name}-`));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}
