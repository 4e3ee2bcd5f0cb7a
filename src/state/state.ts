// The dynamic state: `state.json` in the state dir. Every change is a read-modify-write under a
// short state lock (not the run lock, so `product.set` works during a long run) and an atomic
// replace. A broken file is reported with its path, never reset.

import { promises as fsp, lstatSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { currentUid } from '../util/files.js';
import { pathTrustProblem } from '../util/trust.js';
import type { SettingValue } from '../config/setting-types.js';
import { StateError, PermissionDeniedError, stateFsError } from '../errors.js';
import { PidLock } from '../lock/pid-lock.js';
import { readFileNoFollow, writeJsonAtomic, type WriteHooks } from './atomic.js';

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
  status: 'success' | 'failure';
  exit_code: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  failure: { phase: string; step: string; kind: string; exit_code: number | null } | null;
}

export interface StateDoc {
  schema: number;
  mode: string | null;
  provisioned_at: string | null;
  products: Record<string, ProductState>;
  last_run: LastRun | null;
  last_checkup: unknown;
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
      await mkdirBounded(this.dir);
      const st = this.verifyDir();
      if ((st.mode & 0o777) !== 0o700) {
        if ((st.mode & 0o077) !== 0) this.options.warn?.(`state dir ${this.dir} had mode ${(st.mode & 0o777).toString(8)}; tightened to 700`);
        await fsp.chmod(this.dir, 0o700);
      }
      for (const sub of ['runs', 'outbox', 'outbox/dead']) {
        const path = join(this.dir, sub);
        await fsp.mkdir(path, { mode: 0o700 }).catch(ignoreExists);
        ownDir(path, uid);
        await fsp.chmod(path, 0o700); // whatever the umask took away or left (not a symlink: checked)
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
async function mkdirBounded(dir: string): Promise<void> {
  const parts = resolve(dir).split('/').filter(Boolean);
  let path = '';
  for (const [i, part] of parts.entries()) {
    path += `/${part}`;
    try {
      await fsp.mkdir(path, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'ENOENT' && i > 0) throw new StateError(`cannot create ${path}: its parent disappeared or cannot hold directories (ENOENT)`, 'check the file system under the state dir');
      throw err;
    }
  }
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}

/** Parses and checks the shape of state.json; anything off is reported, never guessed at. */
export function parseState(text: string, file: string): StateDoc {
  const broken = (why: string) => new StateError(`state file ${file} is broken: ${why}`, 'fix it by hand or restore a backup; bootstrap never resets it');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw broken(text.trim() === '' ? 'it is empty' : `not JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw broken('not a JSON object');
  if (typeof doc['schema'] !== 'number') throw broken('no "schema" number');
  if (doc['schema'] > stateSchema) {
    throw new StateError(`state file ${file} has schema ${doc['schema']}, newer than the ${stateSchema} this bootstrap knows`, 'upgrade bootstrap-agent');
  }
  if (doc['mode'] !== null && typeof doc['mode'] !== 'string') throw broken('"mode" is not a string');
  if (doc['provisioned_at'] !== null && typeof doc['provisioned_at'] !== 'string') throw broken('"provisioned_at" is not a string');
  if (!isObject(doc['products'])) throw broken('"products" is not an object');
  for (const [name, p] of Object.entries(doc['products'])) {
    if (!isObject(p) || typeof p['enabled'] !== 'boolean' || (p['version'] !== null && typeof p['version'] !== 'string') || !isObject(p['settings'])) {
      throw broken(`products.${name} is not {enabled, version, settings}`);
    }
    for (const [k, v] of Object.entries(p['settings'])) {
      if (!['string', 'number', 'boolean'].includes(typeof v)) throw broken(`products.${name}.settings.${k} is not a string, number or boolean`);
    }
  }
  if (doc['last_run'] !== null && !isObject(doc['last_run'])) throw broken('"last_run" is not an object');
  return { ...emptyState(), ...(doc as unknown as StateDoc), schema: stateSchema };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
