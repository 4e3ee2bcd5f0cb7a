// The durable outbox: one file per callback in `outbox/`, written atomically before the first
// attempt and removed only after a 2xx; refused ones go to `outbox/dead/` with the reason.
// Names sort by creation time, so the oldest is delivered first.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { stateFsError } from '../errors.js';
import { readFileNoFollow, writeJsonAtomic } from '../state/atomic.js';

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

  async add(item: OutboxItem): Promise<string> {
    try {
      await fsp.mkdir(this.deadDir, { recursive: true, mode: 0o700 });
      const file = join(this.dir, `${item.created_at.replace(/[-:.]/g, '')}-${item.id}.json`);
      await writeJsonAtomic(file, item, 0o600);
      return file;
    } catch (err) {
      throw stateFsError(err, `write callback to ${this.dir}`);
    }
  }

  /** File names of waiting callbacks, oldest first. */
  async names(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw stateFsError(err, `read ${this.dir}`);
    }
  }

  /** One waiting callback; null when it is gone (delivered by another flusher) or unreadable. */
  async read(name: string): Promise<OutboxEntry | null> {
    const file = join(this.dir, name);
    try {
      return { file, item: JSON.parse(await readFileNoFollow(file)) as OutboxItem };
    } catch {
      return null; // gone, or torn by hand: not ours to judge here
    }
  }

  /** Waiting callbacks, oldest first (reads every file: for small outboxes and tests). */
  async list(): Promise<OutboxEntry[]> {
    const out: OutboxEntry[] = [];
    for (const name of await this.names()) {
      const entry = await this.read(name);
      if (entry) out.push(entry);
    }
    return out;
  }

  async update(entry: OutboxEntry): Promise<void> {
    await writeJsonAtomic(entry.file, entry.item, 0o600);
  }

  async remove(entry: OutboxEntry): Promise<void> {
    await fsp.rm(entry.file, { force: true });
  }

  /** Refused for good: kept in dead/ with the reason, never retried. */
  async bury(entry: OutboxEntry, reason: string): Promise<void> {
    await fsp.mkdir(this.deadDir, { recursive: true, mode: 0o700 });
    await writeJsonAtomic(join(this.deadDir, entry.file.slice(this.dir.length + 1)), { ...entry.item, dead_reason: reason, dead_at: new Date().toISOString() }, 0o600);
    await fsp.rm(entry.file, { force: true });
  }

  async counts(now = Date.now()): Promise<{ pending: number; oldestAgeSeconds: number | null; dead: number }> {
    const names = await this.names();
    const first = names[0] ? await this.read(names[0]) : null;
    let dead = 0;
    try {
      dead = (await fsp.readdir(this.deadDir)).filter((n) => n.endsWith('.json')).length;
    } catch {
      // none yet
    }
    const oldest = first ? Date.parse(first.item.created_at) : NaN;
    return { pending: names.length, oldestAgeSeconds: Number.isNaN(oldest) ? null : Math.max(0, Math.round((now - oldest) / 1000)), dead };
  }
}
