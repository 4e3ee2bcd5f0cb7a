// A lock that names its holder. proper-lockfile gives the exclusion (an atomic mkdir of
// `<path>.d`); beside it, `<path>` is the owner record (JSON: PID, process start time, boot id,
// host, command, start time) that operators read and that lets us take the lock over at once
// when its holder is dead.
//
// A holder that is alive (same boot, PID and start time match) is never taken over, whatever
// the mtime or the clock says: a stopped (SIGSTOP), suspended or slow agent keeps its lock. So
// proper-lockfile's staleness is turned off; dead holders are found by their PID instead.
//
// Nothing is ever written inside the mutex dir: proper-lockfile removes it with rmdir.

import { shapeProblem, type Shape } from '../state/shape.js';
import { promises as fsp, statSync, type Stats } from 'node:fs';
import { LockHeldError, stateFsError, type LockHolder } from '../errors.js';
import { readFileNoFollow, writeJsonAtomic } from '../state/atomic.js';
import { bootId, isProcessAlive, nextTurn, processStartTime, sleep } from '../util/process.js';
import { withGuard } from './guard.js';
import { liveIntents, removeDeadIntents, writeIntent } from './intents.js';
import { os, properLockfile } from '../util/lazy.js';
import { removeFile, tryRemoveFile } from '../util/files.js';
import { lockFs } from './sync-fs.js';

/** proper-lockfile's staleness, off: never (its mtime refresh every ~12 days is harmless). */
const neverStale = { stale: 2 ** 31 * 1000, update: 2 ** 30 };

export interface LockOwner extends LockHolder {
  /** Identity of the mutex dir this record belongs to (a record left by a dead holder does not match a new dir). */
  lockIno: number;
  lockBirthMs: number;
  /** The boot the holder runs in (its PID means something only there). */
  bootId?: string | null;
  /** The run this lock is held for, so that a takeover can record a run whose agent died. */
  runId?: string;
  action?: string;
  /** Set while the run's reboot command runs (run/reboot.ts): the holder waits for the reboot. */
  waiting?: 'reboot';
}

// A lock record read back (state/shape.ts): anything else is no record of ours.
const ownerShape: Shape = {
  pid: 'number',
  pidStart: 'string?',
  host: 'string',
  command: 'string',
  startedAt: 'string',
  lockIno: 'number',
  lockBirthMs: 'number?',
  bootId: 'string?',
  runId: 'string?',
  action: 'string?',
  waiting: 'string?',
};

/** A dead holder, and whether it died in this boot (what it left may still run). */
export type DeadOwner = LockOwner & { sameBoot: boolean };

export type LockProbe =
  | { state: 'free' }
  | { state: 'held'; owner: LockOwner | null }
  | { state: 'dead'; owner: DeadOwner };

export interface AcquireOptions {
  command: string;
  /** undefined: fail at once when held; a number of ms (Infinity: forever) to wait. */
  waitMs?: number | undefined;
  pollMs?: number;
  /** Called when the lock is lost while held (mutex dir removed or not refreshable). */
  onCompromised?: (err: Error) => void;
  /**
   * Called once, by the one process that takes over the lock of a dead holder, before it does
   * (to warn, end what it left, and record its run). Many waiters: exactly one calls it.
   */
  onTakeOver?: (owner: DeadOwner) => void | Promise<void>;
  /** Called once when the lock is held and acquire starts to wait for it. */
  onWait?: (owner: LockOwner | null) => void;
}

export class PidLock {
  readonly mutexDir: string;

  constructor(readonly path: string) {
    this.mutexDir = `${path}.d`;
  }

  async acquire(options: AcquireOptions): Promise<LockHandle> {
    const started = Date.now();
    const deadline = options.waitMs === undefined ? started : started + options.waitMs;
    const pollMs = options.pollMs ?? 200;
    // An intent record, written just before each mkdir attempt and removed right after it fails
    // or once the owner record is written: a mutex dir with no owner record and no live intent
    // has a dead creator, and is taken over at once instead of after the staleness delay.
    let waited = false;
    for (;;) {
      let release: (() => Promise<void>) | null;
      const intent = await this.writeIntent();
      try {
        release = await this.tryMutex(options.onCompromised);
        if (release) return await this.recordOwner(options.command, release);
      } finally {
        tryRemoveFile(intent);
      }
      const probe = await this.probe();
      if (probe.state === 'dead') await this.takeOver(probe.owner, options.onTakeOver);
      if (probe.state !== 'held') {
        await nextTurn(); // its calls are synchronous: timers and signals are served before the next try
        continue;
      }
      const now = Date.now();
      // A holder between mkdir and writing its record: give it a moment so the error can name it.
      if (probe.owner === null && now < started + 500) {
        await sleep(20);
        continue;
      }
      if (now >= deadline) throw new LockHeldError(this.path, probe.owner);
      if (!waited) options.onWait?.(probe.owner);
      waited = true;
      // Jitter spreads out many waiters (50 product.set at once).
      await sleep(Math.min(deadline - now, pollMs * (0.5 + Math.random())));
    }
  }

  /**
   * Writes an intent record of this process (see acquire) and returns its path. A holder writes one
   * too while it releases: between removing its record and its mutex dir it would otherwise look
   * like a creator that died before writing its record, and a takeover then could remove the
   * mutex dir another process has just made (seen once in 50 product.set at once).
   */
  writeIntent(): Promise<string> {
    return writeIntent(this.path);
  }

  /** What the lock looks like now: free, held (by whom, if known), or held by a dead process. */
  async probe(): Promise<LockProbe> {
    for (let i = 0; i < 3; i++) {
      const dir = this.statMutex();
      if (!dir) return { state: 'free' };
      const owner = await this.readOwner();
      if (owner && this.describes(owner, dir)) {
        const boot = bootId();
        // Same boot: the PID and its start time decide. Another boot (the record names one): the
        // holder's boot is over. No boot id (an old record): judge by the host as before.
        const sameBoot = owner.bootId ? owner.bootId === boot : owner.host === os().hostname();
        if (!owner.bootId && !sameBoot) return { state: 'held', owner }; // cannot judge a PID of another host
        if (sameBoot && isProcessAlive(owner.pid, owner.pidStart)) return { state: 'held', owner };
        return { state: 'dead', owner: { ...owner, sameBoot } };
      }
      // No record for this dir: its creator is between mkdir and writing it, or died there.
      if (liveIntents(this.path).length > 0) return { state: 'held', owner: null };
      // Nobody alive meant to take it. Look once more: the creator may have just finished.
      const again = this.statMutex();
      const record = await this.readOwner();
      if (again && again.ino === dir.ino && !(record && this.describes(record, again))) {
        const unknown: DeadOwner = { pid: 0, host: os().hostname(), command: '(a process that died while taking the lock)', startedAt: dir.birthtime.toISOString(), lockIno: dir.ino, lockBirthMs: dir.birthtimeMs, sameBoot: true };
        return { state: 'dead', owner: unknown };
      }
    }
    return { state: 'held', owner: null };
  }

  private statMutex(): Stats | null {
    try {
      return statSync(this.mutexDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw stateFsError(err, `read lock ${this.mutexDir}`);
    }
  }

  private describes(owner: LockOwner, dir: Stats): boolean {
    return owner.lockIno === dir.ino && !(owner.lockBirthMs && dir.birthtimeMs && owner.lockBirthMs !== dir.birthtimeMs);
  }

  async readOwner(): Promise<LockOwner | null> {
    try {
      const owner: unknown = JSON.parse(await readFileNoFollow(this.path));
      return shapeProblem(owner, ownerShape) === null ? (owner as LockOwner) : null; // not a record of ours: no holder to name
    } catch {
      return null;
    }
  }

  private async tryMutex(onCompromised?: (err: Error) => void): Promise<(() => Promise<void>) | null> {
    try {
      return await (await properLockfile()).lock(this.path, {
        lockfilePath: this.mutexDir,
        realpath: false,
        retries: 0,
        ...neverStale,
        onCompromised: onCompromised ?? (() => {}),
        fs: lockFs,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return null;
      throw stateFsError(err, `take lock ${this.path}`);
    }
  }

  private async recordOwner(command: string, release: () => Promise<void>): Promise<LockHandle> {
    try {
      const dir = statSync(this.mutexDir);
      const owner: LockOwner = {
        pid: process.pid,
        pidStart: processStartTime(process.pid) ?? undefined,
        bootId: bootId(),
        host: os().hostname(),
        command,
        startedAt: new Date().toISOString(),
        lockIno: dir.ino,
        lockBirthMs: dir.birthtimeMs,
      };
      await writeJsonAtomic(this.path, owner, 0o600, { durable: false });
      return new LockHandle(this, owner, release);
    } catch (err) {
      await release().catch(() => {});
      throw stateFsError(err, `write lock owner ${this.path}`);
    }
  }

  /**
   * Removes the lock of a dead holder. Takeovers are serialised by a second, short mutex and the
   * holder is checked again under it, so two processes cannot both remove and one then remove the
   * other's fresh lock. The record goes first: while the mutex dir exists nobody else writes one.
   * `onTakeOver` runs under the guard, only in the process that finds the holder still dead
   * there: the others then find the lock free or taken, and record nothing.
   */
  private async takeOver(dead: DeadOwner, onTakeOver?: (owner: DeadOwner) => void | Promise<void>): Promise<void> {
    await withGuard(`${this.path}.takeover`, async () => {
      const probe = await this.probe();
      if (probe.state === 'dead' && probe.owner.pid === dead.pid && probe.owner.lockIno === dead.lockIno) {
        await onTakeOver?.(probe.owner);
        if (dead.pid !== 0) removeFile(this.path); // pid 0: the record is someone else's or none
        await fsp.rmdir(this.mutexDir).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      await removeDeadIntents(this.path); // left by the dead
    });
  }
}

export class LockHandle {
  private released = false;

  constructor(
    readonly lock: PidLock,
    readonly owner: LockOwner,
    private readonly releaseMutex: () => Promise<void>,
  ) {}

  private writes: Promise<void> = Promise.resolve();

  /** Updates the owner record (e.g. with the step launcher); updates land in the order made. */
  update(fields: Partial<LockOwner>): Promise<void> {
    Object.assign(this.owner, fields);
    const record = { ...this.owner };
    this.writes = this.writes.catch(() => {}).then(() => writeJsonAtomic(this.lock.path, record, 0o600, { durable: false }));
    return this.writes;
  }

  /** Removes the owner record (if still ours) and then the mutex dir. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // Alive and releasing, said by an intent record until the mutex dir is gone (see writeIntent).
    const intent = await this.lock.writeIntent().catch(() => null);
    try {
      const current = await this.lock.readOwner();
      if (current && current.pid === this.owner.pid && current.lockIno === this.owner.lockIno) {
        tryRemoveFile(this.lock.path);
      }
      await this.releaseMutex().catch(() => {}); // compromised or already gone: nothing left to free
    } finally {
      if (intent) tryRemoveFile(intent);
    }
  }
}
