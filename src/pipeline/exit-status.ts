// What a file's exit status, as the launcher reports it (bash's $?: 128+N after a death by signal
// N), says of how it ended.

import { StepExit } from '../errors.js';
import { os } from '../util/lazy.js';

/** Signals whose 128+N status counts as a death by that signal even when we did not stop the file. */
const fatalSignals = new Set([1, 2, 3, 4, 6, 7, 8, 9, 11, 13, 14, 15, 24, 25]);

/**
 * The signal the file died of (`SIGTERM`), or null when its status is an exit code: 128+N is a
 * death by signal N when we stopped it (timeout, the run's signal) or N is a fatal one.
 */
export function signalOf(status: number | null, stopped: boolean): string | null {
  if (status === null || status <= StepExit.signalBase) return null;
  const n = status - StepExit.signalBase;
  if (!stopped && !fatalSignals.has(n)) return null;
  const entry = Object.entries(os().constants.signals).find(([, v]) => v === n);
  return entry ? entry[0] : `signal ${n}`;
}
