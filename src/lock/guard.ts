// A short mutex (`<path>.d`) held for a moment, such as the one that serialises takeovers of a
// dead holder's lock. Each process that wants it keeps an intent record (lock/intents.ts) while it
// waits and holds, so a guard left by a process killed while holding it is removed at once when no
// live process has a record (before: the next run waited 5 s for it to turn stale). With other
// live contenders it cannot tell which of them holds it, so the staleness (5 s) still frees it.
//
// Only the one contender that finds no other live record removes the dead guard: a second one
// writes its record before it looks, so the first sees it, or it sees the first's.

import { promises as fsp, statSync, type Stats } from 'node:fs';
import { stateFsError } from '../errors.js';
import { nextTurn, sleep } from '../util/process.js';
import { liveIntents, removeDeadIntents, writeIntent } from './intents.js';
import { properLockfile } from '../util/lazy.js';
import { tryRemoveFile } from '../util/files.js';
import { lockFs } from './sync-fs.js';

/** Staleness: a guard not refreshed for this long is free (a holder refreshes it every 2.5 s). */
const staleMs = 5000;
/** How long to try before giving up (a guard is held for milliseconds). */
const waitMs = 10_000;

/** Runs `fn` holding the guard at `path`. */
export async function withGuard<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const mine = await writeIntent(path);
  try {
    const release = await takeGuard(path, mine);
    try {
      await removeDeadIntents(path, mine); // of processes killed while they waited or held it
      return await fn();
    } finally {
      await release().catch(() => {});
    }
  } finally {
    tryRemoveFile(mine);
  }
}

async function takeGuard(path: string, mine: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await (await properLockfile()).lock(path, { lockfilePath: `${path}.d`, realpath: false, stale: staleMs, retries: 0, onCompromised: () => {}, fs: lockFs });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw stateFsError(err, `take over lock ${path}`);
    }
    const seen = statGuard(path);
    // Its holder keeps a record while it holds it: none alive but ours (and ours seen) is a dead holder.
    const live = seen ? liveIntents(path) : [];
    if (seen && live.length === 1 && live[0] === mine) {
      await removeDeadGuard(path, seen);
      await nextTurn(); // its calls are synchronous: timers and signals are served before the next try
    } else await sleep(10 + Math.random() * 90);
  }
}

function statGuard(path: string): Stats | null {
  try {
    return statSync(`${path}.d`);
  } catch {
    return null; // gone meanwhile: try again at once
  }
}

/** The guard's holder is dead: its dir goes (if it is still the one seen). */
async function removeDeadGuard(path: string, seen: Stats): Promise<void> {
  const now = statGuard(path);
  if (now && now.ino === seen.ino && now.birthtimeMs === seen.birthtimeMs) {
    await fsp.rmdir(`${path}.d`).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw stateFsError(err, `take over lock ${path}`);
    });
  }
}
