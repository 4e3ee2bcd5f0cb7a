// `server.status --check`: what a monitor alerts on, as a pure function of the state, the outbox
// counts, the time and the allowed age of the last success. One problem, one line; none: healthy.

import { DisabledError, oneLine } from '../errors.js';
import { successOf, type LastSuccess, type StateDoc } from '../state/state.js';

const minuteMs = 60_000;

/**
 * The default --max-age: twice the refresh timer's interval plus its random delay, from
 * systemd/bootstrap-refresh.timer (OnUnitInactiveSec=15min, RandomizedDelaySec=5min): 35 min.
 * A unit test reads the shipped timer, so the two cannot drift apart.
 */
export const defaultMaxAgeMs = 2 * 15 * minuteMs + 5 * minuteMs;

/**
 * How long a run may wait for the reboot a step asked for before it is a problem: a reboot takes
 * minutes and bootstrap-resume.service continues the run at boot.
 */
export const rebootWaitMs = 30 * minuteMs;

export type ProblemKind = 'disabled' | 'never-succeeded' | 'stale' | 'failed' | 'refused' | 'reboot-wait' | 'unhealthy' | 'dead-callbacks';

export interface Problem {
  problem: ProblemKind;
  /** One line, control characters escaped. */
  message: string;
}

export interface CheckInput {
  state: Pick<StateDoc, 'last_run' | 'last_success' | 'failed_runs_since_success' | 'paused_run' | 'disabled' | 'last_checkup'>;
  callbacks: { dead: number };
  /** When the run holding the run lock started, if one runs now (named when the last success is old). */
  runningSince?: string | null;
  now: number;
  /** Default: defaultMaxAgeMs. */
  maxAgeMs?: number | undefined;
}

export interface StatusCheck {
  ok: boolean;
  problems: Problem[];
  lastSuccess: LastSuccess | null;
  maxAgeMs: number;
}

/** The problems, in a fixed order (disabled first: it explains the rest). */
export function checkStatus(input: CheckInput): StatusCheck {
  const { state, now } = input;
  const maxAgeMs = input.maxAgeMs ?? defaultMaxAgeMs;
  const lastSuccess = lastSuccessOf(state);
  const problems = [
    state.disabled ? problem('disabled', DisabledError.line(state.disabled)) : null,
    successProblem(lastSuccess, now, maxAgeMs, input.runningSince ?? null),
    lastRunProblem(state),
    rebootProblem(state, now),
    checkupProblem(state.last_checkup),
    input.callbacks.dead > 0 ? problem('dead-callbacks', `${input.callbacks.dead} callback${input.callbacks.dead === 1 ? ' is' : 's are'} dead in outbox/dead/, never retried (fix the receiver, then bootstrap callback.flush --requeue-dead)`) : null,
  ].filter((p): p is Problem => p !== null);
  return { ok: problems.length === 0, problems, lastSuccess, maxAgeMs };
}

/**
 * state.json's last_success; a state written before it was recorded (the field absent) whose last
 * run succeeded has that run as its last success.
 */
export function lastSuccessOf(state: CheckInput['state']): LastSuccess | null {
  return successOf(state).last_success;
}

function successProblem(success: LastSuccess | null, now: number, maxAgeMs: number, runningSince: string | null): Problem | null {
  if (!success) return problem('never-succeeded', 'no run has succeeded yet');
  const at = Date.parse(success.finished_at);
  const age = now - at;
  if (age <= maxAgeMs) return null;
  const running = runningSince ? `; a run is going on since ${runningSince}` : '';
  const ago = Number.isNaN(at) ? 'at an unreadable time' : `${describeAge(age)} ago`;
  return problem('stale', `the last success (${success.action}, run ${success.id}) was at ${success.finished_at}, ${ago}: older than --max-age ${describeAge(maxAgeMs)}${running}`);
}

function lastRunProblem(state: CheckInput['state']): Problem | null {
  const run = state.last_run;
  if (!run || run.status === 'success') return null;
  const failed = state.failed_runs_since_success;
  const since = failed && failed > 1 ? `; ${failed} failed runs since the last success` : '';
  if (run.status === 'refused') return problem('refused', `the last run (${run.action}, run ${run.id}) was refused at ${run.finished_at} (exit ${run.exit_code})${since}`);
  const where = run.failure ? `: ${run.failure.phase}/${run.failure.step} (${run.failure.kind})` : ` (exit ${run.exit_code})`;
  return problem('failed', `the last run (${run.action}, run ${run.id}) failed at ${run.finished_at}${where}${since}`);
}

function rebootProblem(state: CheckInput['state'], now: number): Problem | null {
  const paused = state.paused_run;
  // A run that is resuming runs (under the run lock); its age is the last success's business.
  if (!paused || paused.resuming) return null;
  const waited = now - Date.parse(paused.requested_at);
  if (!(waited > rebootWaitMs)) return null;
  return problem('reboot-wait', `run ${paused.id} (${paused.action}) has waited ${describeAge(waited)} for the reboot ${paused.phase}/${paused.step} asked for at ${paused.requested_at} (${paused.reason}); bootstrap server.resume continues it after the reboot`);
}

/** The last checkup, if any: none is no problem (a server may have no [heartbeat.*]). */
function checkupProblem(checkup: unknown): Problem | null {
  const c = checkup as { healthy?: unknown; finished_at?: unknown; results?: { name?: unknown; healthy?: unknown }[] } | null;
  if (!c || typeof c !== 'object' || c.healthy !== false) return null;
  const bad = (Array.isArray(c.results) ? c.results : []).filter((r) => r?.healthy === false).map((r) => String(r.name));
  return problem('unhealthy', `the last checkup at ${String(c.finished_at)} was unhealthy${bad.length ? `: ${bad.join(', ')}` : ''}`);
}

function problem(kind: ProblemKind, message: string): Problem {
  return { problem: kind, message: oneLine(message) };
}

/** `35 min`, `2 h 5 min`, `3 d 4 h`, `40 s`: an age as an operator reads it. */
export function describeAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return h % 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : `${Math.floor(h / 24)} d`;
}
