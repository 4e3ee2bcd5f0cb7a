// Reading files the agent did not write itself, safely: only regular files (a FIFO would block
// for ever, /dev/zero never ends), opened without blocking, with the size bound enforced while
// reading, and, inside the state dir, only files that belong to the user running bootstrap. And
// removing the small files it did write.

import { constants as fsc, closeSync, fstatSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { PermissionDeniedError, stateFsError } from '../errors.js';

export interface ReadOptions {
  /** Refuse more than this many bytes (ERANGE). */
  maxBytes: number;
  /** Do not follow a symlink at the last component (ELOOP). */
  noFollow?: boolean;
  /** Refuse a file owned by anyone but this user (77): state files are ours alone. */
  ownedBy?: number;
}

export class FileShapeError extends Error {
  constructor(
    readonly path: string,
    readonly code: 'ENOTREG' | 'ERANGE',
    message: string,
  ) {
    super(message);
  }
}

function flags(o: ReadOptions): number {
  return fsc.O_RDONLY | fsc.O_NONBLOCK | (o.noFollow ? fsc.O_NOFOLLOW : 0);
}

function check(path: string, st: { isFile(): boolean; uid: number; size: number }, o: ReadOptions): void {
  if (!st.isFile()) throw new FileShapeError(path, 'ENOTREG', `${path} is not a regular file`);
  if (o.ownedBy !== undefined && st.uid !== o.ownedBy) {
    throw new PermissionDeniedError(`${path} belongs to uid ${st.uid}, not to the user running bootstrap (uid ${o.ownedBy}); refusing to use it`, 'remove it, or chown it if it is really ours');
  }
  if (st.size > o.maxBytes) throw tooLarge(path, o.maxBytes);
}

function tooLarge(path: string, max: number): FileShapeError {
  return new FileShapeError(path, 'ERANGE', `${path} is larger than ${max >= 1024 * 1024 ? `${max / 1024 / 1024} MiB` : `${max} bytes`}`);
}

/**
 * readBoundedSync as a promise. The files are read whole and parsed at once anyway (JSON.parse
 * blocks as long): sync reads cost less than a trip through libuv's thread pool per chunk, and a
 * command that reads only these (product.get, server.status) never loads fs/promises (~3 ms of a
 * start on Node 24). None is read while steps run.
 */
export async function readBounded(path: string, o: ReadOptions): Promise<string> {
  return readBoundedSync(path, o).toString('utf8');
}

export function readBoundedSync(path: string, o: ReadOptions): Buffer {
  const fd = openSync(path, flags(o));
  try {
    check(path, fstatSync(fd), o);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > o.maxBytes) throw tooLarge(path, o.maxBytes); // grew while we read it
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/**
 * rm -f of one file: gone already is no error. One unlink in this thread, where
 * fs.promises.rm made three calls through the thread pool (two lstats, the unlink), each a round
 * trip, and a run removes several (lock records and intents, its config snapshot, old journals).
 */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** removeFile, for a file whose removal is best effort: any failure is left unsaid. */
export function tryRemoveFile(path: string): void {
  try {
    removeFile(path);
  } catch {
    // not ours to report: the caller goes on either way
  }
}

/** The names in a dir, none when it cannot be read (gone, not a dir, not ours): for a sweep, never an error. */
export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The names in a dir of the state dir; none when it is not there yet, any other failure is the state dir's error. */
export function stateDirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw stateFsError(err, `read ${dir}`);
  }
}

export function currentUid(): number {
  return process.getuid?.() ?? 0;
}

/**
 * The first `maxBytes` of a regular file (no symlink followed, no blocking), and whether there
 * was more: for files a step wrote, read whatever their size.
 */
export function readHeadSync(path: string, maxBytes: number): { text: string; truncated: boolean } {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileShapeError(path, 'ENOTREG', `${path} is not a regular file`);
    if (st.size === 0) return { text: '', truncated: false };
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes));
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return { text: buf.toString('utf8', 0, n), truncated: st.size > maxBytes };
  } finally {
    closeSync(fd);
  }
}
