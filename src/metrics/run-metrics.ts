// What `bootstrap.prom` says: built from state.json, the last run's journal and the outbox (what
// server.status reads), never from a run in memory, so every writer (a run, a pause, a refusal,
// a flush, a verify, disable/enable) writes the same truth for the same state.
//
// "Never" is 0, not absent: `time() - bootstrap_last_success_timestamp_seconds > 3600` fires on a
// server that never succeeded too, where an absent series would silence the alert.

import { JournalStore, countSteps, type StepCounts } from '../state/journal.js';
import { successOf, type StateDoc } from '../state/state.js';
import type { Family, Sample } from './render.js';

export interface RunMetricsInput {
  state: StateDoc;
  /** The steps of the last run's journal; null: no run, or its journal is gone (a refusal may have none). */
  steps: StepCounts | null;
  callbacks: { pending: number; dead: number };
  version: string;
  mode: string;
  server: string;
}

/** The step counts of state.json's last run (from its journal for a state.json of an older agent); null when there is none or it cannot be read. */
export async function lastRunSteps(stateDir: string, state: StateDoc): Promise<StepCounts | null> {
  if (!state.last_run) return null;
  if (state.last_run.counts) return state.last_run.counts;
  try {
    return countSteps(await new JournalStore(stateDir).read(state.last_run.id));
  } catch {
    return null; // pruned, refused before a journal, broken: runs.list reports the last
  }
}

export function runFamilies(i: RunMetricsInput): Family[] {
  const { state } = i;
  const last = state.last_run;
  const results: (keyof StepCounts)[] = ['changed', 'unchanged', 'skipped', 'failed'];
  return [
    gauge('bootstrap_info', 'The agent: its version, the mode in force and the server name; always 1.', [{ labels: { version: i.version, mode: i.mode, server: i.server }, value: 1 }]),
    gauge('bootstrap_last_run_timestamp_seconds', 'When the last run (any outcome, a refusal too) finished; 0: none yet.', epochSeconds(last?.finished_at)),
    gauge('bootstrap_last_success_timestamp_seconds', 'When the last successful run finished, kept across failed runs; 0: none yet.', epochSeconds(lastSuccessAt(state))),
    gauge('bootstrap_last_run_duration_seconds', 'How long the last run took.', last ? last.duration_ms / 1000 : 0),
    gauge('bootstrap_last_run_success', '1 if the last run succeeded, 0 if it failed, was refused or none ran yet.', last?.status === 'success' ? 1 : 0),
    gauge('bootstrap_last_run_exit_code', 'The exit code of the last run (0 success, 1 failure, 77 refused: untrusted files, ...).', last?.exit_code ?? 0),
    gauge('bootstrap_failed_runs_since_success', 'Runs (refused ones too) that failed since the last success.', failedSinceSuccess(state)),
    gauge(
      'bootstrap_last_run_steps',
      "The last run's steps by result: changed, unchanged, skipped (by NAME.if), failed.",
      i.steps ? results.map((r) => ({ labels: { result: r }, value: i.steps![r] })) : [],
    ),
    gauge('bootstrap_drift_steps', 'Steps whose .check failed at the last server.verify; 0: no drift or never verified.', state.last_verify?.drift ?? 0),
    gauge('bootstrap_last_verify_timestamp_seconds', 'When the last server.verify finished; 0: never.', epochSeconds(state.last_verify?.finished_at)),
    gauge('bootstrap_callbacks_pending', 'Callbacks waiting in the outbox to be delivered.', i.callbacks.pending),
    gauge('bootstrap_callbacks_dead', 'Callbacks refused for good, kept in outbox/dead/.', i.callbacks.dead),
    gauge('bootstrap_disabled', '1 while runs are disabled (server.disable), else 0.', state.disabled ? 1 : 0),
    gauge('bootstrap_disabled_since_timestamp_seconds', 'Since when runs are disabled; 0: enabled.', epochSeconds(state.disabled?.since)),
    gauge('bootstrap_waiting_for_reboot', '1 while a run waits for the reboot one of its steps asked for, else 0.', state.paused_run ? 1 : 0),
  ];
}

/**
 * state.json of an agent before last_success existed has none: its last run, when that
 * succeeded, is the last success; otherwise unknown until the next success (0).
 */
function lastSuccessAt(state: StateDoc): string | undefined {
  return successOf(state).last_success?.finished_at;
}

/** Without the count (an older agent's state.json): 1 when the last run failed, a lower bound until the next run (successOf). */
function failedSinceSuccess(state: StateDoc): number {
  return successOf(state).failed_runs_since_success;
}

export function gauge(name: string, help: string, value: number | Sample[]): Family {
  return { name, help, type: 'gauge', samples: typeof value === 'number' ? [{ value }] : value };
}

/** Seconds since the epoch, with milliseconds; 0 for none or a time that does not parse. */
export function epochSeconds(iso: string | null | undefined): number {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? 0 : ms / 1000;
}
