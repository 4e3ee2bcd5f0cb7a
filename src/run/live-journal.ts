// The journal of a running run, written as it goes so that `runs.show` and `runs.list` see it.

import { JournalStore, type PhaseRecord, type RunJournal } from '../state/journal.js';

/**
 * The journal of a running run, so `runs.show` and `runs.list` see it: written at the start, then
 * at most about once a second as steps start (not durable: the final journal is), in order.
 */
export function liveJournal(journals: JournalStore, journalOf: (phases: PhaseRecord[]) => RunJournal) {
  let last = 0;
  let writes: Promise<unknown> = Promise.resolve();
  const write = (phases: PhaseRecord[], current: RunJournal['current']) => {
    last = Date.now();
    const journal = { ...journalOf(phases.map((p) => ({ ...p, steps: [...p.steps] }))), current };
    writes = writes.then(() => journals.write(journal, { durable: false })).catch(() => {});
  };
  write([], null);
  // Throttled with a trailing write: what happened during the last second is written then.
  let pending: [PhaseRecord[], RunJournal['current']] | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  return {
    update: (phases: PhaseRecord[], current: { phase: string; step: string } | null) => {
      if (stopped) return;
      pending = [phases, current && { ...current, started_at: new Date().toISOString() }];
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        if (pending) write(...pending);
        pending = null;
      }, Math.max(0, last + 1000 - Date.now()));
      timer.unref();
    },
    done: () => {
      if (timer) clearTimeout(timer);
      return writes;
    },
    /** No live write after this one settles (the journal is written otherwise from now on). */
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      return writes;
    },
  };
}
