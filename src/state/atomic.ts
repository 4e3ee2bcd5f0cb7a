// Atomic replacement of small files: temp file in the same dir, fsync, rename, fsync the dir.
// A reader sees the old bytes or the new bytes, never a mix, even across a crash or power loss.

import { closeSync, constants as fsc, fchmodSync, fsync, openSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { currentUid, readBounded, tryRemoveFile } from '../util/files.js';
import { randomHex } from '../util/random.js';

export interface WriteHooks {
  /** Fault-injection seam for tests: called before each step of the write. */
  beforeStep?: (step: 'open' | 'write' | 'fsync' | 'rename') => void | Promise<void>;
  /**
   * false: still atomic (rename), but no fsync. For files that describe live processes (lock
   * owner records) or live only during a run (the config snapshot): after a power loss they are
   * meaningless anyway, and each fsync costs milliseconds on every run.
   */
  durable?: boolean;
}

/**
 * The temp file beside `path` that replaces it: `.NAME.PID.RANDOM.tmp`, unique per writer, hidden,
 * and never NAME's own pattern (a `*.prom` collector or a `*.json` reader skips it).
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomHex(4)}.tmp`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, hooks: WriteHooks = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = tempPathFor(path);
  // Synchronous calls but the fsyncs: a run makes a dozen of these writes, each waited for before
  // the next, and through the thread pool every call was a round trip of its own. An fsync, though,
  // can take seconds on a busy disk: it stays in the pool, so that this thread's timers (a step's
  // timeout, the refresh of a lock held meanwhile) and signals are served while it lasts.
  const step = hooks.beforeStep;
  if (step) await step('open');
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
  try {
    try {
      fchmodSync(fd, mode); // the umask may have taken bits away; we want exactly `mode`
      if (step) await step('write');
      writeFileSync(fd, data);
      if (step) await step('fsync');
      if (hooks.durable !== false) await fsyncOf(fd);
    } finally {
      closeSync(fd);
    }
    if (step) await step('rename');
    renameSync(tmp, path);
  } catch (err) {
    tryRemoveFile(tmp); // the write's own error is what matters
    throw err;
  }
  if (hooks.durable !== false) await fsyncDir(dir);
}

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600, hooks?: WriteHooks): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode, hooks);
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fsyncOf(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync in the thread pool (see writeFileAtomic). */
function fsyncOf(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * Reads a file of the state dir: not through a symlink at its last component (ELOOP), only a
 * regular file of at most `maxBytes`, and only one that belongs to the user running bootstrap
 * (77): a file planted by another user is never trusted.
 */
export async function readFileNoFollow(path: string, maxBytes = 64 * 1024 * 1024): Promise<string> {
  return readBounded(path, { maxBytes, noFollow: true, ownedBy: currentUid() });
}
