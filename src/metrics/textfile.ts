// One metrics file in node_exporter's textfile dir, replaced atomically: a temp file in that dir
// (`.NAME.PID.RANDOM.tmp`: unique per writer, and not `*.prom`, so the collector never reads it),
// written, chmod 0644 whatever the umask (node_exporter runs unprivileged: 0600 would hide it),
// then renamed over NAME. A scrape sees the old file or the new one, never a part.
//
// No fsync: the file is a view of state.json that every run, checkup and flush rewrites. After a
// power loss it may be the previous one (or empty: an empty file is valid, no samples) until the
// next event; an fsync of file and dir costs milliseconds on every run for nothing more.

import { join } from 'node:path';
import { writeFileAtomic } from '../state/atomic.js';
import { currentUid } from '../util/files.js';

export const textfileMode = 0o644;

/** Why a metrics file could not be written: the file, the errno and what to do, in one line. */
export class TextfileWriteError extends Error {}

export async function writeTextfile(dir: string, name: string, text: string): Promise<void> {
  const file = join(dir, name);
  try {
    await writeFileAtomic(file, text, textfileMode, { durable: false });
  } catch (err) {
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
