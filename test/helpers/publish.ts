// A cached build that test files share (packages, root filesystems, Node binaries): built in
// `DIR.partial-XXXXXX` beside its place, then renamed into place, so a half-built one is never
// seen. Test files run at once may build the same thing: the first rename wins, and a dir in use
// is never replaced under a process that uses it.

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Builds into a fresh work dir (`build` gives the path in it to publish) and renames that to
 * `dir`; where the rename fails, `dir` must be `ready()` (another process's build, as good as
 * ours). The work dir goes in every case. Sync or async as `build` is.
 */
export function publishOnce(dir: string, build: (work: string) => string, ready?: () => boolean): void;
export function publishOnce(dir: string, build: (work: string) => Promise<string>, ready?: () => boolean): Promise<void>;
export function publishOnce(dir: string, build: (work: string) => string | Promise<string>, ready = () => existsSync(dir)): void | Promise<void> {
  mkdirSync(dirname(dir), { recursive: true });
  const work = mkdtempSync(`${dir}.partial-`);
  const clean = () => rmSync(work, { recursive: true, force: true });
  const publish = (built: string) => {
    try {
      renameSync(built, dir);
    } catch (e) {
      if (!ready()) throw e;
    }
  };
  let built: string | Promise<string>;
  try {
    built = build(work);
  } catch (e) {
    clean();
    throw e;
  }
  if (typeof built === 'string') {
    try {
      publish(built);
    } finally {
      clean();
    }
    return;
  }
  return built.then(publish).finally(clean);
}
