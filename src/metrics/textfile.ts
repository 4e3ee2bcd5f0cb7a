// One metrics file in node_exporter's textfile dir, replaced atomically: a temp file in that dir
// (`.NAME.PID.RANDOM.tmp`: unique per writer, and not `*.prom`, so the collector never reads it),
// written, chmod 0644 whatever the umask (node_exporter runs unprivileged: 0600 would hide it),
// then renamed over NAME. A scrape sees the old file or the new one, never a part.
//
// state/atomic.ts's steps, but synchronous: five syscalls on a 3 KB file, where each promise
// step is a thread-pool round trip that a loaded server stretches (bench/metrics.mjs). No fsync:
// the file is a view of state.json that every run, checkup and flush rewrites; after a power
// loss it may be the previous one (or empty: valid, no samples) until the next event, and an
// fsync of file and dir costs milliseconds on every run for nothing more.

import { closeSync, constants as fsc, fchmodSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentUid } from '../util/files.js';
import { tempPathFor } from '../state/atomic.js';

export const textfileMode = 0o644;

/** Why a metrics file could not be written: the file, the errno and what to do, in one line. */
export class TextfileWriteError extends Error {}

export function writeTextfile(dir: string, name: string, text: string): void {
  const file = join(dir, name);
  const tmp = tempPathFor(file);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, textfileMode);
    fchmodSync(fd, textfileMode); // the umask took bits away
    writeFileSync(fd, text);
    closeSync(fd);
    fd = null;
    renameSync(tmp, file);
  } catch (err) {
    try {
      if (fd !== null) closeSync(fd);
      rmSync(tmp, { force: true });
    } catch {
      // the first error is the one to report
    }
    throw new TextfileWriteError(describeWriteFailure(err as NodeJS.ErrnoException, dir, file));
  }
}

/** The textfile dir is never created: node_exporter's package makes it, and a typo should show. */
function describeWriteFailure(err: NodeJS.ErrnoException, dir: string, file: string): string {
  const code = err.code ?? 'error';
  const unset = 'or unset [metrics] textfile_dir';
  switch (code) {
    case 'ENOENT':
      return `[metrics] textfile_dir ${dir} does not exist (ENOENT); create it (node_exporter --collector.textfile.directory reads it) ${unset}`;
    case 'ENOTDIR':
      return `[metrics] textfile_dir ${dir} is not a directory (ENOTDIR); point it at node_exporter's textfile directory ${unset}`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `cannot write ${file}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'} (${code}) for uid ${currentUid()}; make ${dir} writable by the user running bootstrap ${unset}`;
    case 'ENOSPC':
    case 'EDQUOT':
      return `cannot write ${file}: no space left (${code}); free some space in ${dir}`;
    default:
      return `cannot write ${file}: ${err.message}`;
  }
}
