// Outbox hygiene, at every flush under its lock, before anything is sent: only the newest
// undelivered checkup report of each receiver is kept (a heartbeat reporting every minute while
// the receiver is down must not pile up stale reports; a run's callback is never dropped), and with
// `[callback] max_age` what waited longer goes to dead/ with the reason. Both are decided from the
// file names (outbox.ts), so a flush lists the outbox once and reads only what it buries.

import { removeFile } from '../util/files.js';
import { join } from 'node:path';
import type { Logger } from '../log/log.js';
import { urlTag, type Outbox, type WaitingName } from './outbox.js';

/**
 * The receiver a waiting file goes to, from its name: [callback] url's callbacks and a
 * --callback-url's to the same URL are one receiver; null for a file of an older version.
 */
export function receiverOf(w: WaitingName, configUrl: string | undefined): string | null {
  if (w.receiver === null) return null;
  if (w.receiver === 'config') return configUrl ? urlTag(configUrl) : 'config';
  return w.receiver;
}

/** Drops every checkup report but each receiver's newest; returns the names still to deliver, in order. */
export async function dropOlderCheckups(outbox: Outbox, names: WaitingName[], configUrl: string | undefined, log: Logger): Promise<{ kept: WaitingName[]; dropped: string[] }> {
  const newest = new Map<string, string>();
  for (const w of names) if (w.kind === 'checkup') newest.set(receiverOf(w, configUrl)!, w.name); // names sort oldest first
  const kept: WaitingName[] = [];
  const dropped: string[] = [];
  for (const w of names) {
    if (w.kind !== 'checkup' || newest.get(receiverOf(w, configUrl)!) === w.name) {
      kept.push(w);
      continue;
    }
    removeFile(join(outbox.dir, w.name));
    dropped.push(w.id);
  }
  if (dropped.length) log.info(`dropped ${dropped.length} older undelivered checkup report(s): only the newest is kept`);
  return { kept, dropped };
}

/** `[callback] max_age`: callbacks queued longer ago go to dead/, the reason in their `dead_reason`. */
export async function buryExpired(outbox: Outbox, names: WaitingName[], maxAgeMs: number | undefined, log: Logger, now = Date.now()): Promise<{ kept: WaitingName[]; buried: string[] }> {
  if (maxAgeMs === undefined) return { kept: names, buried: [] };
  const kept: WaitingName[] = [];
  const buried: string[] = [];
  for (const w of names) {
    if (w.queuedMs === null || now - w.queuedMs <= maxAgeMs) {
      kept.push(w);
      continue;
    }
    const entry = await outbox.read(w.name);
    if (!entry) continue; // delivered meanwhile
    if ('broken' in entry) {
      kept.push(w); // buried as broken, with that reason, when its turn comes
      continue;
    }
    const last = entry.item.last_error ? `, last error: ${entry.item.last_error}` : '';
    await outbox.bury(entry, `not delivered within [callback] max_age (${seconds(maxAgeMs)}): queued ${new Date(w.queuedMs).toISOString()}, ${entry.item.attempts} attempt(s)${last}`);
    log.debug(`callback ${entry.item.id}: older than [callback] max_age; moved to ${outbox.deadDir}`);
    buried.push(entry.item.id);
  }
  if (buried.length) log.warn(`${buried.length} callback(s) waited longer than [callback] max_age (${seconds(maxAgeMs)}); moved to ${outbox.deadDir} (bootstrap callback.flush --requeue-dead sends them again)`);
  return { kept, buried };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
