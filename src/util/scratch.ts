// The private dir of work that runs scripts without the run lock (a dry run, `server.facts
// --refresh`): a dry run's configuration snapshot (0600, secrets included) lives there. No lock
// means no takeover to clean up after an agent killed mid-way, so the dir's name says whose it
// is — its agent's state dir (hashed), run id, PID and the PID's start time — and whoever comes
// next on that state dir (a run, a dry run, a fact collection) removes the dirs of owners that are gone and ends what their scripts left running
// (found by the run id's marker, util/process). In /dev/shm (tmpfs: a snapshot never reaches a
// disk, and none survives a reboot) when there is one, else in the temp dir.

import { promises as fsp, lstatSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { stateFsError } from '../errors.js';
import { isProcessAlive, processStartTime, sweepMarked } from './process.js';
import { crypto, os } from './lazy.js';
import { namesIn } from './files.js';

const prefix = 'bootstrap-scratch-';
const shm = '/dev/shm';

/**
 * Creates this process's scratch dir for run `runId` (mkdtemp: 0700, a fresh name) and has `fill`
 * write what it needs there. Any local user can fill /dev/shm: when it cannot take the dir or its
 * files, the temp dir is tried; when neither can, a typed error (73/77), never a crash.
 */
export async function makeScratchDir(stateDir: string, runId: string, fill: (dir: string) => Promise<void> = async () => {}): Promise<string> {
  const name = `${prefix}${ownerTag(stateDir)}-${runId}.${process.pid}.${processStartTime(process.pid) ?? 'x'}-`;
  let failure: unknown;
  for (const base of [shm, os().tmpdir()]) {
    let dir: string | undefined;
    try {
      dir = await fsp.mkdtemp(join(base, name));
      await fill(dir);
      return dir;
    } catch (err) {
      failure = err;
      if (dir) await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }
  throw stateFsError(failure, `write a scratch dir for ${runId} in ${shm} or ${os().tmpdir()}`);
}

/**
 * Removes the scratch dirs whose owner is gone (ours only: same uid, a real dir), after ending
 * every process that carries `markerOf(runId)`. Returns what it found, for a warning.
 */
export async function sweepDeadScratch(stateDir: string, markerOf: (runId: string) => string, graceMs: number): Promise<{ dirs: string[]; processes: number }> {
  // A hash (node:crypto, ms to load): taken only for a dir whose owner is gone, the cheap checks first.
  let tag: string | undefined;
  const found = { dirs: [] as string[], processes: 0 };
  const uid = process.getuid?.() ?? 0;
  for (const base of new Set([shm, os().tmpdir()])) {
    const names = namesIn(base);
    for (const name of names) {
      const m = /^bootstrap-scratch-([0-9a-f]{8})-([0-9A-Za-z-]+)\.(\d+)\.(\d+|x)-[0-9A-Za-z]+$/.exec(name);
      if (!m) continue;
      const [, owner, runId, pid, start] = m;
      if (isProcessAlive(Number(pid), start === 'x' ? null : start)) continue;
      const dir = join(base, name);
      let st: Stats;
      try {
        st = lstatSync(dir);
      } catch {
        continue; // gone meanwhile
      }
      if (!st.isDirectory() || st.uid !== uid) continue;
      if (owner !== (tag ??= ownerTag(stateDir))) continue; // another agent's (another state dir): not ours to judge
      found.processes += (await sweepMarked(markerOf(runId!), graceMs)).length;
      await fsp.rm(dir, { recursive: true, force: true });
      found.dirs.push(dir);
    }
  }
  return found;
}

/**
 * Which agent a scratch dir belongs to: a short hash of its state dir. Agents on two state dirs
 * never sweep each other's (the library's promise: they do not see each other).
 */
function ownerTag(stateDir: string): string {
  return crypto().createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 8);
}
