// Intent records: `<path>.pending.<pid>.<random>`, a small JSON file ({pid, pidStart}) a process
// writes beside a mutex dir before it tries to make the dir, and keeps while it makes or holds
// it. A mutex dir that no live process has an intent record for was left by a dead one: it can
// be removed at once, instead of after a staleness delay.

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { stateFsError } from '../errors.js';
import { writeFileAtomic } from '../state/atomic.js';
import { shapeProblem } from '../state/shape.js';
import { isProcessAlive, processStartTime } from '../util/process.js';
import { randomHex } from '../util/random.js';
import { stateDirNames, tryRemoveFile } from '../util/files.js';

/** Writes an intent record of this process for `path` and returns its file. */
export async function writeIntent(path: string): Promise<string> {
  const intent = `${path}.pending.${process.pid}.${randomHex(4)}`;
  try {
    await writeFileAtomic(intent, JSON.stringify({ pid: process.pid, pidStart: processStartTime(process.pid) }), 0o600, { durable: false });
  } catch (err) {
    throw stateFsError(err, `take lock ${path}`);
  }
  return intent;
}

/** Every intent record for `path`, of live and dead processes (a dir that cannot be read is an error: nobody is judged dead by it). */
export function intents(path: string): string[] {
  const prefix = `${basename(path)}.pending.`;
  return stateDirNames(dirname(path)).filter((n) => n.startsWith(prefix)).map((n) => join(dirname(path), n));
}

/** Whether the process that wrote intent record `f` is alive (a record that cannot be read counts as alive). */
export function isLiveIntent(f: string): boolean {
  try {
    const intent: unknown = JSON.parse(readFileSync(f, 'utf8'));
    if (shapeProblem(intent, { pid: 'number', pidStart: 'string?' }) !== null) return false; // not a live writer's record
    const { pid, pidStart } = intent as { pid: number; pidStart: string | null };
    return isProcessAlive(pid, pidStart);
  } catch {
    return true; // being written, or gone meanwhile: judged again at the next look
  }
}

/** The intent records for `path` of processes that are still alive. */
export function liveIntents(path: string): string[] {
  return intents(path).filter(isLiveIntent);
}

/**
 * Removes the records of dead processes, `keep` aside. Each record is judged on its own, from one
 * listing: a record written after a listing of the live ones is never taken for a dead one.
 */
export async function removeDeadIntents(path: string, keep: string | null = null): Promise<void> {
  for (const f of intents(path)) {
    if (f === keep || isLiveIntent(f)) continue;
    tryRemoveFile(f); // not ours to remove: left as it is
  }
}
