// The fs proper-lockfile works with: node:fs, its callback calls (mkdir, stat, utimes, rmdir,
// realpath) made of the synchronous ones, as proper-lockfile's own lockSync does. Through the
// thread pool each call of a lock was a round trip: a dozen in every run. For its lock() and
// unlock() only: its lockSync would look for the *Sync calls, which this does not have.

import * as fs from 'node:fs';

type Callback = (err: unknown, result?: unknown) => void;

/** `name` as a callback call that does its work synchronously, then calls back. */
function viaSync(name: 'mkdir' | 'realpath' | 'stat' | 'rmdir' | 'utimes') {
  const sync = fs[`${name}Sync`] as (...args: unknown[]) => unknown;
  return (...args: unknown[]): void => {
    const callback = args.pop() as Callback;
    let result: unknown;
    try {
      result = sync(...args);
    } catch (err) {
      callback(err);
      return;
    }
    callback(null, result);
  };
}

/**
 * For proper-lockfile's `fs` option: the calls it makes (4.1: lockfile.js and mtime-precision.js),
 * and rmdirSync, with which it frees its locks at exit. Not a copy of node:fs: reading its
 * `promises` would start fs.promises.
 */
export const lockFs = {
  mkdir: viaSync('mkdir'),
  realpath: viaSync('realpath'),
  stat: viaSync('stat'),
  rmdir: viaSync('rmdir'),
  utimes: viaSync('utimes'),
  rmdirSync: fs.rmdirSync,
} as unknown as typeof fs;
