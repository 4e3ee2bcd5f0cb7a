// The files of one run: its 0600 config snapshot (what a resumed run reads back) and the dir of
// its steps' BOOTSTRAP_CHANGES and BOOTSTRAP_REBOOT_FILE files.

import { promises as fsp, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { LockOwner } from '../lock/pid-lock.js';
import { stateFsError } from '../errors.js';
import { readFileNoFollow } from '../state/atomic.js';
import { type Shape, shapeProblem } from '../state/shape.js';
import type { Intent, RunRequest } from './types.js';

/** The files of one run: its id, its config snapshot, the dir of its steps' BOOTSTRAP_CHANGES. */
/** What a run writes into its run lock's record (the rest is the lock's own). */
export interface RunLockRecord {
  update(fields: Partial<Pick<LockOwner, 'runId' | 'action' | 'waiting'>>): Promise<void>;
}

export interface RunFiles {
  runId: string;
  snapshot: string;
  changesDir: string;
  /** The run lock, to record that the run waits for its reboot. */
  lock: RunLockRecord;
}

/**
 * The dir of a run's BOOTSTRAP_CHANGES files (one per step, created empty by the launcher) and
 * BOOTSTRAP_REBOOT_FILEs: `runs/<id>.changes` (0700) in the state dir. Not /dev/shm, though a
 * file costs less to create on tmpfs: any local user can fill /dev/shm, and a step's report that
 * cannot be written there would read as "nothing changed, no reboot asked". The state dir's
 * filesystem is one the run needs anyway; what is lost to it being full is detected (see
 * lib/launcher.bash). The files are gone with the run (a takeover removes those of a dead run).
 */
export async function makeChangesDir(stateDir: string, runId: string): Promise<string> {
  const dir = join(stateDir, 'runs', `${runId}.changes`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw stateFsError(err, `create ${dir}`);
  }
  return dir;
}

/**
 * Removes a run's changes dir: the launcher's files, one a file it ran (two if it asked for a
 * reboot), and the probe. One readdir and an unlink each, in this thread: fs.promises.rm lstats
 * each entry through the thread pool, about three times as long at the end of every run (300
 * steps, loaded machine: 68 ms against 20). Anything else (a step made a dir there, the dir is
 * gone already) falls back to rm.
 */
export async function removeChangesDir(dir: string): Promise<void> {
  try {
    for (const name of readdirSync(dir)) unlinkSync(join(dir, name));
    rmdirSync(dir);
  } catch {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const shmDir = '/dev/shm';

/** Removes the changes dirs a dead run of an older agent (they were in /dev/shm) left there. */
export async function removeChangesDirs(runId: string): Promise<void> {
  const names = await fsp.readdir(shmDir).catch(() => [] as string[]);
  for (const n of names) if (n.startsWith(`bootstrap-${runId}-`)) await fsp.rm(join(shmDir, n), { recursive: true, force: true });
}

/**
 * The 0600 file behind BOOTSTRAP_CONFIG_JSON: the whole effective configuration, secrets
 * included; and, under `resume`, what a run paused for a reboot resumes with.
 */
export function snapshotOf(config: Config, intent: Intent, request: RunRequest, runId: string) {
  return {
    run_id: runId,
    action: request.action,
    server: config.server.name,
    mode: intent.mode,
    products: Object.fromEntries(
      intent.products.map((p) => [p.name, { enabled: p.enabled, version: p.version, settings: Object.fromEntries(p.settings.map((s) => [s.name, s.value])) }]),
    ),
    resume: {
      request: { action: request.action, product: request.product, products: request.products, toVersion: request.toVersion, label: request.label, callbackUrl: request.callbackUrl },
      intent,
    },
  };
}

// What a resume reads of a paused run's snapshot (state/shape.ts): the request and its intent.
const settingShape: Shape = { product: 'string', name: 'string', type: 'string', secret: 'boolean', value: 'string|number|boolean?', origin: 'string' };

const snapshotShape: Shape = {
  resume: {
    request: { action: 'string', product: 'string?', products: ['string', '?'], toVersion: 'string?', label: 'string?', callbackUrl: 'string?' },
    intent: {
      products: [{ name: 'string', version: 'string?', enabled: 'boolean', settings: [settingShape] }],
      mode: 'string',
      modePrevious: 'string?',
      versionPrevious: 'string?',
      toVersion: 'string?',
    },
  },
};

/** A paused run's snapshot, or why it cannot be used (`is gone`, `is broken: …`). */
export async function readSnapshot(file: string): Promise<{ request: Partial<RunRequest>; intent: Intent } | string> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFileNoFollow(file, 16 * 1024 * 1024));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is gone' : `cannot be read (${(err as Error).message})`;
  }
  const problem = shapeProblem(doc, snapshotShape);
  if (problem) return `is broken: ${problem}`;
  const { request, intent } = (doc as { resume: { request: Partial<RunRequest>; intent: Intent } }).resume;
  return { request, intent };
}
