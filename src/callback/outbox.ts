// The durable outbox: one file per callback in `outbox/`, written atomically before the first
// attempt and removed only after a 2xx; refused ones go to `outbox/dead/` with the reason.
// Names sort by creation time, so the oldest is delivered first, and say what a flush must know
// without reading the file: `<created>-<id>@<kind>.<receiver>.json` (kind `run` or `checkup`;
// receiver `config` for [callback] url, or `u` and a hash of a --callback-url), so one receiver's
// callbacks are found, and older checkup reports dropped, from the listing alone (files queued by
// older versions, `<created>-<id>.json`, are read as before). A run's own callback is first
// written "held" (`….json.hold`, never delivered) and released once its outcome is committed, so
// no callback ever contradicts what state.json says. A file that cannot be read as a callback
// is moved to dead/ with the reason: it never blocks the others.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { stateFsError } from '../errors.js';
import { readFileNoFollow, writeJsonAtomic } from '../state/atomic.js';
import type { CallbackBody } from './payload.js';
import { crypto } from '../util/lazy.js';
import { namesIn, removeFile, stateDirNames } from '../util/files.js';

export interface OutboxItem {
  id: string;
  created_at: string;
  /** `config`: deliver to [callback] url as it is at delivery time (no URL, and no token in it, is stored). */
  url_source: 'config' | 'flag';
  url: string | null;
  /** The exact body bytes that are signed and sent. */
  body: string;
  attempts: number;
  last_error: string | null;
  /** The body's kind: only the newest undelivered checkup report of a receiver is kept (absent in files of older versions). */
  kind?: CallbackBody['kind'];
}

export interface OutboxEntry {
  file: string;
  item: OutboxItem;
}

export class Outbox {
  readonly dir: string;
  readonly deadDir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'outbox');
    this.deadDir = join(this.dir, 'dead');
  }

  /** Writes a callback; `held`: not delivered until `release`. Returns its file. */
  async add(item: OutboxItem, options: { held?: boolean } = {}): Promise<string> {
    try {
      const file = join(this.dir, `${nameOf(item, item.created_at)}${options.held ? heldSuffix : ''}`);
      await writeJsonAtomic(file, item, 0o600);
      return file;
    } catch (err) {
      throw stateFsError(err, `write callback to ${this.dir}`);
    }
  }

  /** Makes a held callback deliverable, with its body replaced first when `body` is given. */
  async release(file: string, body?: string): Promise<void> {
    if (!file.endsWith(heldSuffix)) return;
    try {
      if (body !== undefined) {
        const item = JSON.parse(await readFileNoFollow(file)) as OutboxItem;
        await writeJsonAtomic(file, { ...item, body }, 0o600);
      }
      await fsp.rename(file, file.slice(0, -heldSuffix.length));
    } catch (err) {
      throw stateFsError(err, `release callback ${file}`);
    }
  }

  /** Held callbacks of a run (left by an agent killed before it released them). */
  async held(runId: string): Promise<string[]> {
    try {
      // A run's callbacks: its outcome (`<id>`) and those of its pauses for a reboot (`<id>.reboot-N`).
      const ours = new RegExp(`-${runId.replace(/[^\w-]/g, '\\$&')}(\\.reboot-\\d+)?(@\\w+\\.\\w+)?\\.json\\.hold$`);
      return (await fsp.readdir(this.dir)).filter((n) => ours.test(n)).map((n) => join(this.dir, n));
    } catch {
      return [];
    }
  }

  /** File names of waiting callbacks, oldest first. */
  async names(): Promise<string[]> {
    return stateDirNames(this.dir).filter((n) => n.endsWith('.json')).sort(); // one listing: sync costs less
  }

  /** One waiting callback; null when it is gone (delivered by another flusher). */
  async read(name: string): Promise<OutboxEntry | { file: string; broken: string } | null> {
    const file = join(this.dir, name);
    let text: string;
    try {
      text = await readFileNoFollow(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      return { file, broken: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
    let item: unknown;
    try {
      item = JSON.parse(text);
    } catch (err) {
      return { file, broken: `not JSON (${(err as Error).message})` };
    }
    const problem = itemProblem(item);
    return problem ? { file, broken: problem } : { file, item: item as OutboxItem };
  }

  /** A file that is not a callback: to dead/ with the reason, the file itself kept beside it. */
  async buryBroken(file: string, reason: string): Promise<void> {
    const name = file.slice(this.dir.length + 1);
    await fsp.mkdir(this.deadDir, { recursive: true, mode: 0o700 });
    await fsp.rename(file, join(this.deadDir, `${name}.broken`));
    await writeJsonAtomic(join(this.deadDir, name), { id: null, file: `${name}.broken`, dead_reason: `broken outbox file: ${reason}`, dead_at: new Date().toISOString() }, 0o600);
  }

  /** Waiting callbacks, oldest first (reads every file: for small outboxes and tests). */
  async list(): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = [];
    for (const name of await this.names()) {
      const entry = await this.read(name);
      if (entry && 'item' in entry) out.push(entry);
    }
    return out;
  }

  async update(entry: OutboxEntry): Promise<void> {
    await writeJsonAtomic(entry.file, entry.item, 0o600);
  }

  async remove(entry: OutboxEntry): Promise<void> {
    removeFile(entry.file);
  }

  /** Refused for good: kept in dead/ with the reason, never retried. */
  async bury(entry: OutboxEntry, reason: string): Promise<void> {
    await fsp.mkdir(this.deadDir, { recursive: true, mode: 0o700 });
    await writeJsonAtomic(join(this.deadDir, entry.file.slice(this.dir.length + 1)), { ...entry.item, dead_reason: reason, dead_at: new Date().toISOString() }, 0o600);
    removeFile(entry.file);
  }

  /**
   * `callback.flush --requeue-dead`: every dead callback back in the outbox, as if queued now
   * (its name, hence its order and its age for max_age, from now; `last_error` says why it was
   * dead). Records of broken files stay. Returns the ids moved.
   */
  async requeueDead(now = new Date()): Promise<string[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.deadDir)).filter((n) => n.endsWith('.json')).sort();
    } catch {
      return [];
    }
    const moved: string[] = [];
    for (const name of names) {
      const file = join(this.deadDir, name);
      let dead: OutboxItem & { dead_reason?: string; dead_at?: string };
      try {
        dead = JSON.parse(await readFileNoFollow(file));
      } catch {
        continue; // unreadable: left where it is, counted as dead
      }
      if (itemProblem(dead)) continue; // the record of a broken file
      const { dead_reason: reason, dead_at: _at, ...item } = dead;
      item.kind ??= kindOfBody(item.body); // buried by an older version, whose files did not say
      await writeJsonAtomic(join(this.dir, nameOf(item, now.toISOString())), { ...item, last_error: reason ?? item.last_error }, 0o600);
      removeFile(file);
      moved.push(item.id);
    }
    return moved;
  }

  async counts(now = Date.now()): Promise<{ pending: number; oldestAgeSeconds: number | null; dead: number }> {
    const names = await this.names();
    const read = names[0] ? await this.read(names[0]) : null;
    const first = read && 'item' in read ? read : null;
    const dead = await this.deadCount();
    const oldest = first ? Date.parse(first.item.created_at) : NaN;
    return { pending: names.length, oldestAgeSeconds: Number.isNaN(oldest) ? null : Math.max(0, Math.round((now - oldest) / 1000)), dead };
  }

  /** Callbacks refused for good (outbox/dead/, records of broken files not counted); 0 when the dir is not there yet. */
  async deadCount(): Promise<number> {
    return namesIn(this.deadDir).filter((n) => n.endsWith('.json')).length; // none yet: 0
  }
}

const heldSuffix = '.hold';

function kindOfBody(body: string): CallbackBody['kind'] {
  try {
    const kind = (JSON.parse(body) as { kind?: unknown }).kind;
    return typeof kind === 'string' && /^\w+$/.test(kind) ? (kind as CallbackBody['kind']) : 'run';
  } catch {
    return 'run';
  }
}

/** `<created>-<id>@<kind>.<receiver>.json`; `created` is an ISO time. */
function nameOf(item: OutboxItem, created: string): string {
  return `${created.replace(/[-:.]/g, '')}-${item.id}@${item.kind ?? 'run'}.${receiverTag(item)}.json`;
}

/** `config` ([callback] url, whatever it is at delivery), or `u` and a hash of the URL a --callback-url named. */
function receiverTag(item: Pick<OutboxItem, 'url_source' | 'url'>): string {
  return item.url_source === 'config' || item.url === null ? 'config' : urlTag(item.url);
}

export function urlTag(url: string): string {
  return `u${crypto().createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

export interface WaitingName {
  name: string;
  id: string;
  /** When it was queued (from the name); null when the name does not say. */
  queuedMs: number | null;
  /** The body's kind (`run`, `checkup`, …); null: a file of an older version, whose name does not say. */
  kind: string | null;
  receiver: string | null;
}

/** What a waiting file's name says, without reading it. */
export function parseName(name: string): WaitingName {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{3})?\d*Z-(.+?)(?:@([a-z]+)\.(\w+))?\.json$/.exec(name);
  if (!m) return { name, id: idFromName(name), queuedMs: null, kind: null, receiver: null };
  const queuedMs = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +(m[7] ?? 0));
  return { name, id: m[8]!, queuedMs, kind: m[9] ?? null, receiver: m[10] ?? null };
}

/** The id a waiting file's name carries (`<created>-<id>[@<kind>.<receiver>].json`), without reading it. */
export function idFromName(name: string): string {
  return name.replace(/\.json$/, '').replace(/@\w+\.\w+$/, '').replace(/^\d{8}T\d{6}\d*Z-/, '');
}

function itemProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || o['id'] === '') return 'no "id"';
  if (typeof o['body'] !== 'string') return 'no "body" string';
  if (o['url_source'] !== 'config' && o['url_source'] !== 'flag') return '"url_source" is neither config nor flag';
  if (o['url_source'] === 'flag' && typeof o['url'] !== 'string') return 'no "url" for a callback to a --callback-url';
  if (typeof o['attempts'] !== 'number') return 'no "attempts" number';
  return null;
}
