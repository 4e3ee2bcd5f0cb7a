// The records a run's journal (`runs/<run-id>.json`) is made of: steps and their companions,
// phases, the failure, reboots, timings, a verify's verdicts. journal.ts reads and writes them.

import type { LastSuccess } from './state.js';

export interface StepRecord {
  phase: string;
  name: string;
  role: 'step' | 'check' | 'backout' | 'error' | 'condition' | 'explorer';
  /** `skipped`: its NAME.if exited 1 (the reason is the message). */
  status: 'success' | 'failure' | 'skipped';
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  started_at: string;
  duration_ms: number;
  attempts: number;
  message: string;
  output_tail: string;
  output_truncated: boolean;
  check: StepRecord | null;
  /** Its NAME.if, when it has one. */
  condition?: StepRecord | null;
  /** What it reported in BOOTSTRAP_CHANGES, one change a line (absent in journals of older agents). */
  changes?: string[];
  changes_truncated?: boolean;
  /** It asked for a reboot, with this reason. */
  reboot?: string;
  /** It ran and reported nothing, under `[phases] unreported = changed`: counted as changed. */
  unreported?: 'changed';
  /** In a verify's journal (the step itself never ran): what its NAME.if and NAME.check said of it. */
  verify?: VerifyResult;
}

/**
 * server.verify, per step: `ok` its check passed, `drift` its check failed, `no check` it has
 * none, `skipped` its NAME.if exited 1, `error` its check or NAME.if could not run (timeout,
 * signal, cannot start; a NAME.if that exits neither 0 nor 1).
 */
export type VerifyResult = 'ok' | 'drift' | 'no check' | 'skipped' | 'error';

/** A verified step's result, as --json and the callback give it. */
export interface StepVerdict {
  phase: string;
  step: string;
  result: VerifyResult;
  /** Why: a skip's reason, what a drifted check printed first, how a check failed to run; null for ok and no check. */
  message: string | null;
}

/** The results of a verify's steps, in order, from its journal's records. */
export function verifyVerdicts(phases: PhaseRecord[]): StepVerdict[] {
  return phases.flatMap((p) => p.steps.map((s) => ({ phase: p.phase, step: s.name, result: s.verify ?? 'error', message: s.verify === 'ok' || s.verify === 'no check' ? null : s.message })));
}

/** A verify in brief: `error` when a check could not run, else `drift` when one failed, else `ok`. */
export interface VerifySummary {
  status: 'ok' | 'drift' | 'error';
  ok: number;
  drift: number;
  no_check: number;
  skipped: number;
  error: number;
}

export interface RebootRecord {
  phase: string;
  step: string;
  reason: string;
  requested_at: string;
}

/** How many steps changed something, changed nothing, were skipped by their NAME.if, failed. */
export interface StepCounts {
  changed: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

export interface PhaseRecord {
  phase: string;
  dir: string;
  /** `paused`: a step asked for a reboot here; `pending`: after it, waiting for the resume. */
  status: 'success' | 'failure' | 'missing' | 'not run' | 'paused' | 'pending';
  steps: StepRecord[];
  duration_ms: number;
}

export interface FailureRecord {
  phase: string;
  step: string;
  /** `refused`: the run was refused before its first step (phase `agent`; the journal's exit_code says why: 73, 77, 78). */
  kind: 'exit' | 'signal' | 'timeout' | 'check' | 'heartbeat' | 'condition' | 'reboot' | 'refused';
  exit_code: number | null;
  message: string;
}

/** Where a run spent its time outside its files (ms; null: did not happen), its boots added up: runs.blame's own rows. */
export interface RunTimings {
  /** From asking for the run lock (and os-refresh-config's) to holding them, a dead run's takeover included. */
  lock_wait_ms: number;
  /** The built-in facts and explorer.d (its environment.d sourcing is in environment_ms). */
  explorers_ms: number | null;
  /** Every sourcing of environment.d, summed (each phase's, explorer.d's, backouts' and error.d's). */
  environment_ms: number | null;
  health_gate_ms: number | null;
  /** The in-run delivery of the outbox (older callbacks first, then this run's), bounded by [callback] timeout. */
  callback_ms: number | null;
}


export interface RunJournal {
  schema: number;
  id: string;
  action: string;
  command: string;
  server: string;
  /**
   * `running`: written while the run goes on (at its start, then about once a second);
   * `rebooting`: paused for a reboot a step asked for, until server.resume;
   * `drift` (action verify only): a check failed, none failed to run;
   * `refused`: refused before its first step (trust, state, config, plan): no phases, the error in `failure`.
   */
  status: 'success' | 'failure' | 'running' | 'rebooting' | 'drift' | 'refused';
  /** null while running. */
  exit_code: number | null;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /** null: not known (a run refused for an invalid bootstrap.ini, without --phases-dir). */
  phases_dir: string | null;
  mode: string;
  mode_previous: string | null;
  product: string | null;
  version: string | null;
  version_previous: string | null;
  /** Enabled product → the version in force after the run (a failed upgrade leaves the old one). */
  products: Record<string, string | null>;
  callback_url: string | null;
  /** The run's --label, if any. */
  label?: string | null;
  phases: PhaseRecord[];
  failure: FailureRecord | null;
  backouts: StepRecord[];
  error_steps: StepRecord[];
  health: unknown;
  /** The facts of this run (built-in and explorer.d), and the explorers' records. */
  facts?: Record<string, unknown> | null;
  explorers?: StepRecord[];
  /** The steps' changes in brief (see StepCounts). */
  counts?: StepCounts;
  /** Each boot the run ran in (a run paused for a reboot goes on in the next). */
  boots?: { boot_id: string | null; started_at: string }[];
  /** Each reboot a step asked for. */
  reboots?: RebootRecord[];
  /** While running: the step that runs now. */
  current?: { phase: string; step: string; started_at: string } | null;
  /** Action verify: its outcome in brief (each step's result is its record's `verify`). */
  verify?: VerifySummary;
  /** Where the run spent its time besides its files (absent in journals of older agents). */
  timings?: RunTimings;
  /**
   * Once the run is over: the last success with this run counted (itself, when it succeeded) and
   * the failed or refused runs since (absent while running, and in journals of older agents).
   */
  last_success?: LastSuccess | null;
  failed_runs_since_success?: number;
}
