// --retain: run history older than that is deleted in small batches, one short statement each,
// with a pause between them, so a prune of a million rows never holds the write lock for long;
// each server's latest state (and its last run) is kept for ever.

import type { Counters } from './metrics.js';
import type { Store } from './storage/store.js';

const batchRows = 500;
const pauseMs = 20;

/** Prunes now, then every `intervalMs`; the returned function stops it (and waits for a prune under way). */
export function startRetention(store: Store, retainMs: number, intervalMs: number, counters: Counters, log: (l: string) => void): () => Promise<void> {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const prune = async () => {
    const before = Date.now() - retainMs;
    let total = 0;
    for (let full = true; full && !stopped; ) {
      const n = await store.pruneBatch(before, batchRows);
      total += n.callbacks;
      full = n.callbacks === batchRows || n.deliveries === batchRows;
      if (full) await new Promise((r) => setTimeout(r, pauseMs));
    }
    counters.pruned += total;
    if (total > 0) log(`retention: pruned ${total} callbacks received before ${new Date(before).toISOString()}`);
  };
  const tick = () => {
    running = prune()
      .catch((err: Error) => log(`retention: prune failed (retried in ${Math.round(intervalMs / 1000)} s): ${err.message}`))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
