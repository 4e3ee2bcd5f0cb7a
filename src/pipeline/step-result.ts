// The failure vocabulary of a run: what kinds of failure there are, the one message ladder from
// a file's result to a failure (`failureOf`), and the conversions of results and failures to the
// records of the journal. The pipeline, the explorers and the dry-run preview all say why a file
// failed through this module, so the same result reads the same everywhere.

import { StepExit } from '../errors.js';
import type { FailureRecord, StepRecord } from '../state/journal.js';
import type { RawStepResult } from './launcher.js';

/**
 * How a run failed: a file's exit, signal or timeout; a check or condition that failed; the
 * health gate (`heartbeat`); a reboot that could not be asked for (`reboot`).
 */
export type FailureKind = 'exit' | 'signal' | 'timeout' | 'check' | 'heartbeat' | 'condition' | 'reboot';

export interface Failure {
  phase: string;
  step: string;
  kind: FailureKind;
  exitCode: number | null;
  message: string;
}

/** The one ladder from a step result to a failure: timed out, signalled, could not run, exit code. */
export function failureOf(step: { phase: string; name: string }, r: RawStepResult): Failure | null {
  const at = { phase: step.phase, step: step.name };
  if (r.timedOut) return { ...at, kind: 'timeout', exitCode: null, message: `timed out after ${(r.durationMs / 1000).toFixed(1)} s (its process group was killed)` };
  if (r.aborted) return { ...at, kind: 'signal', exitCode: null, message: 'stopped: the agent was asked to stop (SIGINT/SIGTERM)' };
  if (r.error) return { ...at, kind: 'exit', exitCode: null, message: r.error };
  if (r.signal) return { ...at, kind: 'signal', exitCode: null, message: `killed by ${r.signal}` };
  // Checked before the exit code: a condition's exit 1 must not skip a step whose reports were lost.
  if (r.reportsLost) return { ...at, kind: 'exit', exitCode: r.exitCode, message: `${describeExit(r.exitCode)}, but the filesystem of its BOOTSTRAP_CHANGES had no room left: what it reported (changes, a reboot request) may be lost` };
  if (r.exitCode !== StepExit.ok) return { ...at, kind: 'exit', exitCode: r.exitCode, message: describeExit(r.exitCode) };
  return null;
}

function describeExit(code: number | null): string {
  if (code === StepExit.cannotExecute) return `exit ${code} (not executable, or its interpreter cannot run)`;
  if (code === StepExit.notFound) return `exit ${code} (its interpreter or a command was not found)`;
  return `exit ${code}`;
}

/** Why a condition skipped its step: the first line it printed, else its exit. */
export function skipReason(step: { name: string }, r: RawStepResult): string {
  return firstLine(r.output) ?? `${step.name}.if exited 1`;
}

/** A reason a script wrote: its first non-blank line, trimmed, at most 500 characters. */
export function firstLine(text: string): string | undefined {
  return text.split('\n').map((l) => l.trim()).find((l) => l !== '')?.slice(0, 500);
}

export function toStepRecord(phase: string, name: string, role: StepRecord['role'], r: RawStepResult, attempts: number): StepRecord {
  const failure = failureOf({ phase, name }, r);
  return {
    phase,
    name,
    role,
    status: failure ? 'failure' : 'success',
    exit_code: r.exitCode,
    signal: r.signal,
    timed_out: r.timedOut,
    started_at: r.startedAt,
    duration_ms: r.durationMs,
    attempts,
    message: failure ? failure.message : 'ok',
    output_tail: r.output,
    output_truncated: r.outputTruncated,
    check: null,
    changes: r.changes,
    changes_truncated: r.changesTruncated,
  };
}

export function toFailureRecord(f: Failure): FailureRecord {
  return { phase: f.phase, step: f.step, kind: f.kind, exit_code: f.exitCode, message: f.message };
}
