// The dynamic state: `state.json` in the state dir. Every change is a read-modify-write under a
// short state lock (not the run lock, so `product.set` works during a long run) and an atomic
// replace. A broken file is reported with its path, never reset.

import { chmodSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { currentUid } from '../util/files.js';
import { runSystemTool } from '../util/system-tool.js';
import { pathTrustProblem } from '../util/trust.js';
import type { SettingValue } from '../config/setting-types.js';
import { StateError, PermissionDeniedError, stateFsError } from '../errors.js';
import { PidLock } from '../lock/pid-lock.js';
import { readFileNoFollow, writeJsonAtomic, type WriteHooks } from './atomic.js';
import { isObject, shapeProblem, type Shape } from './shape.js';

export const stateSchema = 1;

export interface ProductState {
  /** Whether the product is among those that runs apply (set by `server.provision --products`). */
  enabled: boolean;
  /** The version committed by the last successful provision or upgrade. */
  version: string | null;
  /** Values set by `product.set`. */
  settings: Record<string, SettingValue>;
}

export interface LastRun {
  id: string;
  action: string;
  /** refused: the run command was refused before its first step (trust, state, config, plan). */
  status: 'success' | 'failure' | 'refused';
  exit_code: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  failure: { phase: string; step: string; kind: string; exit_code: number | null } | null;
  /** Its --label (absent in a state.json of an older agent). */
  label?: string | null;
  /** The run's step counts (absent in a state.json of an older agent: its journal has them). */
  counts?: { changed: number; unchanged: number; skipped: number; failed: number };
}

/** A run that paused for a reboot a step asked for, until `server.resume` continues or ends it. */
export interface PausedRun {
  id: string;
  action: string;
  label: string | null;
  /** The step that asked, and why. */
  phase: string;
  step: string;
  reason: string;
  requested_at: string;
  /** The boot the run paused in: it resumes only in another. */
  boot_id: string | null;
  /** Reboots this run asked for so far (at most [phases] max_reboots). */
  reboots: number;
  /** Set when a resume started: an agent killed during it leaves the run to be recorded as failed, never resumed twice. */
  resuming: { boot_id: string | null; started_at: string } | null;
}

/** The last run that succeeded: kept across failed runs (monitoring keys on its age). */
export interface LastSuccess {
  id: string;
  action: string;
  finished_at: string;
}

/** `server.disable --reason`: runs are stopped until `server.enable`. */
export interface Disabled {
  since: string;
  /** Who: the user (SUDO_USER, else the login name) and the uid. */
  by: string;
  reason: string;
}

/** The last `server.verify`: how many steps drifted (their .check failed). */
export interface LastVerify {
  id: string;
  finished_at: string;
  /** ok: no drift; drift: a check failed; error: a check could not run. */
  status: 'ok' | 'drift' | 'error';
  drift: number;
  ok: number;
  no_check: number;
  skipped: number;
}

export interface StateDoc {
  schema: number;
  mode: string | null;
  provisioned_at: string | null;
  products: Record<string, ProductState>;
  last_run: LastRun | null;
  /** Absent or null: no run has succeeded yet. */
  last_success?: LastSuccess | null;
  /** Runs (refused ones too) that failed since last_success; 0 after a success. */
  failed_runs_since_success?: number;
  disabled?: Disabled | null;
  last_verify?: LastVerify | null;
  last_checkup: unknown;
  /** Absent or null: no run waits for a reboot. */
  paused_run?: PausedRun | null;
  /**
   * The last `server.provision` asked for (written as it starts, whatever comes of it): while the
   * server was never provisioned, `server.refresh` runs it again. Absent or null: never asked.
   */
  provision_requested?: ProvisionRequested | null;
}

/** A provision asked for: when, and its --products (null: the default, those recorded else all). */
export interface ProvisionRequested {
  at: string;
  products: string[] | null;
}

/**
 * last_success and the failed runs since, as state.json has them. A state.json of an older agent
 * (no counter yet) gives them from last_run: its success, or at least one failure.
 */
export function successOf(s: Pick<StateDoc, 'last_run' | 'last_success' | 'failed_runs_since_success'>): { last_success: LastSuccess | null; failed_runs_since_success: number } {
  const last = s.last_run;
  const fromLastRun = last?.status === 'success' ? { id: last.id, action: last.action, finished_at: last.finished_at } : null;
  return {
    last_success: s.last_success !== undefined ? s.last_success : fromLastRun,
    failed_runs_since_success: s.failed_runs_since_success ?? (last && last.status !== 'success' ? 1 : 0),
  };
}

export function emptyState(): StateDoc {
  return { schema: stateSchema, mode: null, provisioned_at: null, products: {}, last_run: null, last_checkup: null };
}

export interface StateStoreOptions {
  /** Fault-injection seam for the atomic writer. */
  writeHooks?: WriteHooks;
  /** How long a change waits for the state lock. */
  lockWaitMs?: number;
  warn?: (message: string) => void;
}

export class StateStore {
  readonly file: string;
  readonly lock: PidLock;

  constructor(
    readonly dir: string,
    private readonly options: StateStoreOptions = {},
  ) {
    this.file = join(dir, 'state.json');
    this.lock = new PidLock(join(dir, 'state.lock'));
  }

  /** The current state; the initial one when the state dir or file does not exist yet. */
  async read(): Promise<StateDoc> {
    let text: string;
    try {
      this.verifyDir();
      text = await readFileNoFollow(this.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return emptyState();
      if (code === 'ELOOP') throw new StateError(`state file ${this.file} is a symbolic link; refusing to follow it`, 'replace it with the real file');
      throw stateFsError(err, `read state file ${this.file}`);
    }
    return parseState(text, this.file);
  }

  /** Applies `change` to the current state under the state lock and writes the result atomically. */
  async update<T>(command: string, change: (state: StateDoc) => T | Promise<T>): Promise<T> {
    await this.ensureDir();
    const handle = await this.lock.acquire({ command, waitMs: this.options.lockWaitMs ?? 30_000, pollMs: 20 });
    try {
      const state = await this.read();
      const result = await change(state);
      await this.write(state);
      return result;
    } finally {
      await handle.release();
    }
  }

  private async write(state: StateDoc): Promise<void> {
    try {
      await writeJsonAtomic(this.file, state, 0o600, this.options.writeHooks);
    } catch (err) {
      throw stateFsError(err, `write state file ${this.file}`);
    }
  }

  /**
   * Creates the state dir 0700 (whatever the umask), or tightens an existing one that is looser.
   * Refused (77): a state dir or an entry of it that belongs to another user, whatever its mode,
   * a symlink in place of one, or a path others could swap (util/trust). Bounded: no retry loop.
   */
  async ensureDir(): Promise<void> {
    const uid = currentUid();
    try {
      const problem = pathTrustProblem(this.dir, uid, undefined, false);
      if (problem) throw new PermissionDeniedError(`state dir ${this.dir} is not safe: ${problem.path}: ${problem.reason}`, 'use a state dir whose parent dirs only root can change');
      mkdirBounded(this.dir);
      const st = this.verifyDir();
      if ((st.mode & 0o777) !== 0o700) {
        if ((st.mode & 0o077) !== 0) this.options.warn?.(`state dir ${this.dir} had mode ${(st.mode & 0o777).toString(8)}; tightened to 700`);
        chmodSync(this.dir, 0o700);
      }
      for (const sub of ['runs', 'outbox', 'outbox/dead']) {
        const path = join(this.dir, sub);
        let made = false;
        try {
          mkdirSync(path, { mode: 0o700 });
          made = true;
        } catch (err) {
          ignoreExists(err as NodeJS.ErrnoException);
        }
        ownDir(path, uid);
        chmodSync(path, 0o700); // whatever the umask took away or left (not a symlink: checked)
        if (made && sub === 'runs') await spreadSubdirs(path);
      }
    } catch (err) {
      throw stateFsError(err, `create state dir ${this.dir}`);
    }
  }

  /** The state dir, if it exists, must be a real directory of ours (not a symlink, not another user's). */
  verifyDir(): Stats {
    return ownDir(this.dir, currentUid());
  }
}

/** lstat of a dir that must be ours: a directory (not a symlink to one), owned by `uid`. */
function ownDir(path: string, uid: number): Stats {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) throw new PermissionDeniedError(`${path} is a symbolic link; bootstrap never follows symlinks in its state dir`, 'replace it with a directory');
  if (!st.isDirectory()) throw new StateError(`${path} is not a directory`);
  if (st.uid !== uid) throw new PermissionDeniedError(`${path} belongs to uid ${st.uid}, not to the user running bootstrap (uid ${uid})`, 'use a state dir of your own, or chown it if it is really yours');
  return st;
}

/**
 * mkdir -p, one component at a time, each tried once: Node's recursive mkdir retries for ever
 * when a parent keeps answering ENOENT (seen on an overlay /var), spinning at full CPU.
 */
function mkdirBounded(dir: string): void {
  const parts = resolve(dir).split('/').filter(Boolean);
  let path = '';
  for (const [i, part] of parts.entries()) {
    path += `/${part}`;
    try {
      mkdirSync(path, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'ENOENT' && i > 0) throw new StateError(`cannot create ${path}: its parent disappeared or cannot hold directories (ENOENT)`, 'check the file system under the state dir');
      throw err;
    }
  }
}

/**
 * Marks `runs/` with ext4's T attribute (`chattr +T`, "top of a directory hierarchy"), once, as
 * it is created: each run's changes dir (runs/<id>.changes, a file per step) is then placed in a
 * block group of its own rather than beside the last run's. On an ext4 without a journal (some
 * VM images' root), creating a file skips every inode of its group freed in the last ~30 s, each
 * skip a look at the inode table: back-to-back runs of 300 steps paid ~0.6–1.9 ms a step for it
 * (bench/phases.mjs, docs/pipeline.md). Only a hint to the allocator: a filesystem without the
 * attribute (tmpfs, or no chattr) is left as it is, silently.
 */
async function spreadSubdirs(dir: string): Promise<void> {
  await runSystemTool('chattr', ['+T', dir]);
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}

/**
 * Parses and checks the shape of state.json, every field down to the leaves; anything off is
 * reported with its path (73), never guessed at or rewritten.
 */
export function parseState(text: string, file: string): StateDoc {
  const broken = (why: string) => new StateError(`state file ${file} is broken: ${why}`, 'fix it by hand or restore a backup; bootstrap never resets it');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw broken(text.trim() === '' ? 'it is empty' : `not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw broken('not a JSON object');
  const schema = doc['schema'];
  if (typeof schema !== 'number' || !Number.isInteger(schema) || schema < 1) throw broken(`"schema" is ${JSON.stringify(schema) ?? 'missing'}, not a schema number (1, 2, …)`);
  if (schema > stateSchema) {
    throw new StateError(`state file ${file} has schema ${schema}, newer than the ${stateSchema} this bootstrap knows`, 'upgrade bootstrap-agent');
  }
  const problem = shapeProblem(doc, stateShape, '');
  if (problem) throw broken(problem);
  return { ...emptyState(), ...(doc as unknown as StateDoc), schema: stateSchema };
}

// The shape of state.json (the language: state/shape.ts).

const failureShape: Shape = { phase: 'string', step: 'string', kind: 'string', exit_code: 'number?' };
const stateShape: Shape = {
  mode: 'string?',
  provisioned_at: 'string?',
  products: { '*': { enabled: 'boolean', version: 'string?', settings: { '*': 'string|number|boolean' } } },
  last_run: {
    '?': 'nullable',
    id: 'string',
    action: 'string',
    status: 'string',
    exit_code: 'number',
    started_at: 'string',
    finished_at: 'string',
    duration_ms: 'number',
    label: 'string?',
    failure: { '?': 'nullable', ...failureShape },
    counts: { '?': 'nullable', changed: 'number', unchanged: 'number', skipped: 'number', failed: 'number' },
  },
  paused_run: {
    '?': 'nullable',
    id: 'string',
    action: 'string',
    label: 'string?',
    phase: 'string',
    step: 'string',
    reason: 'string',
    requested_at: 'string',
    boot_id: 'string?',
    reboots: 'number',
    resuming: { '?': 'nullable', boot_id: 'string?', started_at: 'string' },
  },
  last_success: { '?': 'nullable', id: 'string', action: 'string', finished_at: 'string' },
  failed_runs_since_success: 'number?',
  disabled: { '?': 'nullable', since: 'string', by: 'string', reason: 'string' },
  last_verify: { '?': 'nullable', id: 'string', finished_at: 'string', status: 'string', drift: 'number', ok: 'number', no_check: 'number', skipped: 'number' },
  provision_requested: { '?': 'nullable', at: 'string', products: ['string', '?'] },
  last_checkup: {
    '?': 'nullable',
    healthy: 'boolean',
    started_at: 'string',
    finished_at: 'string',
    results: [{ name: 'string', type: 'string', healthy: 'boolean', detail: 'string', latency_ms: 'number' }],
    mode: 'string?',
    not_run: [{ name: 'string', type: 'string', modes: ['string'] }, '?'],
  },
};
