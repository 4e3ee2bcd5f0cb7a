// A lock that names its holder. proper-lockfile gives the exclusion (an atomic mkdir of
// `<path>.d`, kept fresh by mtime updates); beside it, `<path>` is the owner record (JSON: PID,
// process start time, host, command, start time) that operators read and that lets us take the
// lock over at once when its holder is dead, instead of waiting for staleness.
//
// Nothing is ever written inside the mutex dir: proper-lockfile removes it with rmdir.

import { randomBytes } from 'node:crypto';
import { promises as fsp, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import lockfile from 'proper-lockfile';
import { LockHeldError, stateFsError, type LockHolder } from '../errors.js';
import { readFileNoFollow, writeFileAtomic, writeJsonAtomic } from '../state/atomic.js';
import { isProcessAlive, processStartTime, sleep } from '../util/process.js';

export interface LockOwner extends LockHolder {
  /** Identity of the mutex dir this record belongs to (a record left by a dead holder does not match a new dir). */
  lockIno: number;
  lockBirthMs: number;
  /** The step launcher of the running phase, so that a takeover can end what a killed agent left. */
  launcherPid?: number | null;
  launcherStart?: string | null;
  /** The run this lock is held for, so that a takeover can record a run whose agent died. */
  runId?: string;
  action?: string;
}

export type LockProbe =
  | { state: 'free' }
  | { state: 'held'; owner: LockOwner | null }
  | { state: 'dead'; owner: LockOwner };

export interface AcquireOptions {
  command: string;
  /** undefined: fail at once when held; a number of ms (Infinity: forever) to wait. */
  waitMs?: number | undefined;
  pollMs?: number;
  /** Called when the lock is lost while held (mutex dir removed or not refreshable). */
  onCompromised?: (err: Error) => void;
  /** Called before taking over the lock of a dead holder (to warn, and to end what it left). */
  onTakeOver?: (owner: LockOwner) => void | Promise<void>;
}

export class PidLock {
  readonly mutexDir: string;
  private readonly staleMs: number;

  constructor(
    readonly path: string,
    options: { staleMs?: number } = {},
  ) {
    this.mutexDir = `${path}.d`;
    this.staleMs = options.staleMs ?? 30_000;
  }

  async acquire(options: AcquireOptions): Promise<LockHandle> {
    const started = Date.now();
    const deadline = options.waitMs === undefined ? started : started + options.waitMs;
    const pollMs = options.pollMs ?? 200;
    // An intent record, written just before each mkdir attempt and removed right after it fails
    // or once the owner record is written: a mutex dir with no owner record and no live intent
    // has a dead creator, and is taken over at once instead of after the staleness delay.
    const intent = `${this.path}.pending.${process.pid}.${randomBytes(4).toString('hex')}`;
    const intentRecord = JSON.stringify({ pid: process.pid, pidStart: processStartTime(process.pid) });
    for (;;) {
      let release: (() => Promise<void>) | null;
      try {
        await writeFileAtomic(intent, intentRecord, 0o600, { durable: false });
      } catch (err) {
        throw stateFsError(err, `take lock ${this.path}`);
      }
      try {
        release = await this.tryMutex(options.onCompromised);
        if (release) return await this.recordOwner(options.command, release);
      } finally {
        await fsp.rm(intent, { force: true }).catch(() => {});
      }
      const probe = await this.probe();
      if (probe.state === 'dead') {
        await options.onTakeOver?.(probe.owner);
        await this.takeOver(probe.owner);
        continue;
      }
      if (probe.state === 'free') continue;
      const now = Date.now();
      // A holder between mkdir and writing its record: give it a moment so the error can name it.
      if (probe.owner === null && now < started + 500) {
        await sleep(20);
        continue;
      }
      if (now >= deadline) throw new LockHeldError(this.path, probe.owner);
      // Jitter spreads out many waiters (50 product.set at once).
      await sleep(Math.min(deadline - now, pollMs * (0.5 + Math.random())));
    }
  }

  /** What the lock looks like now: free, held (by whom, if known), or held by a dead process. */
  async probe(): Promise<LockProbe> {
    for (let i = 0; i < 3; i++) {
      const dir = this.statMutex();
      if (!dir) return { state: 'free' };
      const owner = await this.readOwner();
      if (owner && this.describes(owner, dir)) {
        if (owner.host !== hostname()) return { state: 'held', owner }; // cannot judge a PID of another host
        return isProcessAlive(owner.pid, owner.pidStart) ? { state: 'held', owner } : { state: 'dead', owner };
      }
      // No record for this dir: its creator is between mkdir and writing it, or died there.
      if (this.liveIntents().length > 0) return { state: 'held', owner: null };
      // Nobody alive meant to take it. Look once more: the creator may have just finished.
      const again = this.statMutex();
      const record = await this.readOwner();
      if (again && again.ino === dir.ino && !(record && this.describes(record, again))) {
        const unknown: LockOwner = { pid: 0, host: hostname(), command: '(a process that died while taking the lock)', startedAt: dir.birthtime.toISOString(), lockIno: dir.ino, lockBirthMs: dir.birthtimeMs };
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

  /** Intent records (see acquire) of processes that are still alive. */
  private liveIntents(): string[] {
    return this.intents().filter((f) => {
      try {
        const { pid, pidStart } = JSON.parse(readFileSync(f, 'utf8')) as { pid: number; pidStart: string | null };
        return isProcessAlive(pid, pidStart);
      } catch {
        return true; // being written: its writer is alive
      }
    });
  }

  private intents(): string[] {
    const prefix = `${basename(this.path)}.pending.`;
    try {
      return readdirSync(dirname(this.path))
        .filter((n) => n.startsWith(prefix))
        .map((n) => join(dirname(this.path), n));
    } catch {
      return [];
    }
  }

  async readOwner(): Promise<LockOwner | null> {
    try {
      const owner = JSON.parse(await readFileNoFollow(this.path)) as LockOwner;
      return typeof owner?.pid === 'number' ? owner : null;
    } catch {
      return null;
    }
  }

  private async tryMutex(onCompromised?: (err: Error) => void): Promise<(() => Promise<void>) | null> {
    try {
      return await lockfile.lock(this.path, {
        lockfilePath: this.mutexDir,
        realpath: false,
        retries: 0,
        stale: this.staleMs,
        update: Math.floor(this.staleMs / 3),
        onCompromised: onCompromised ?? (() => {}),
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
        host: hostname(),
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
   */
  private async takeOver(dead: LockOwner): Promise<void> {
    const guard = `${this.path}.takeover`;
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(guard, { lockfilePath: `${guard}.d`, realpath: false, stale: 5000, retries: { retries: 100, minTimeout: 10, maxTimeout: 100 }, onCompromised: () => {} });
    } catch (err) {
      throw stateFsError(err, `take over lock ${this.path}`);
    }
    try {
      const probe = await this.probe();
      if (probe.state === 'dead' && probe.owner.pid === dead.pid && probe.owner.lockIno === dead.lockIno) {
        if (dead.pid !== 0) await fsp.rm(this.path, { force: true }); // pid 0: the record is someone else's or none
        await fsp.rmdir(this.mutexDir).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      const live = new Set(this.liveIntents());
      for (const f of this.intents()) if (!live.has(f)) await fsp.rm(f, { force: true }); // left by the dead
    } finally {
      await release().catch(() => {});
    }
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
    const current = await this.lock.readOwner();
    if (current && current.pid === this.owner.pid && current.lockIno === this.owner.lockIno) {
      await fsp.rm(this.lock.path, { force: true }).catch(() => {});
    }
    await this.releaseMutex().catch(() => {}); // compromised or already gone: nothing left to free
  }
}
