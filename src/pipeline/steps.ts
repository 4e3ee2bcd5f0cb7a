// The one step runner: the only code that knows a step's companions and their order — NAME.if,
// then the step, then NAME.check; NAME.backout when the run fails — and what their results make
// of the step (run, skipped, failed, asking for a reboot). It takes `apply`: true runs the step;
// false asks and never changes anything (the condition, and the check when asked for, run; the
// step and its backout never do): the dry run's preview is that, without checks.
//
// Steps are queued on a launcher ahead of their turn (`queueStep`), so no step waits for a
// round trip through the agent, and settled in order (`settleStep`).

import { StepExit } from '../errors.js';
import type { PhasesConfig } from '../config/config.js';
import type { Logger } from '../log/log.js';
import type { PhaseRecord, StepRecord } from '../state/journal.js';
import { Launcher, type RawStepResult, type RunOptions } from './launcher.js';
import type { Plan, PlannedStep } from './plan.js';
import { failureOf, skipReason, toStepRecord, type Failure } from './step-result.js';

/** What running a file of the run needs: its bounds, its signals, its log. */
export interface StepContext {
  plan: Plan;
  /** `NAME=value` that every process of the run inherits: a timeout sweeps them all. */
  marker: string;
  phases: PhasesConfig;
  log: Logger;
  /** Aborted by SIGINT/SIGTERM to the agent: the run fails with kind `signal`. */
  signal: AbortSignal;
  /** Aborted by a second signal: backouts and error.d stop too. */
  cleanupSignal: AbortSignal;
  /** Epoch ms by which the whole run must end. */
  deadline: number;
  /** A dir of ours for each file's BOOTSTRAP_CHANGES (null: /dev/null, nothing recorded). */
  changesDir: string | null;
  /** The records so far and the step that starts now (null: between phases), for the live journal. */
  onProgress?: (phases: PhaseRecord[], current: { phase: string; step: string } | null) => void;
}

/** How each file of a step runs: `name` is the file's (`NAME.if`, `NAME`, `NAME.check`). */
export type FileOptions = (name: string, path: string) => RunOptions;

/** apply: run the step. Without it, only ask: its condition, and its check with `check`. */
export interface StepMode {
  apply: boolean;
  check?: boolean;
}

/** A step on a launcher's queue: its files' results to come (null: that file is not queued). */
export interface QueuedStep {
  step: PlannedStep;
  condition: Promise<RawStepResult | 'skipped'> | null;
  run: Promise<RawStepResult | 'skipped'> | null;
  check: Promise<RawStepResult | 'skipped'> | null;
}

export interface StepOutcome {
  /** The step's record, its condition and check in it (not applied: its check's or its condition's; null: none ran). */
  record: StepRecord | null;
  failure: Failure | null;
  /** The file that asked for a reboot (the step or its check), when the step succeeded. */
  rebootAsked: RawStepResult | null;
}

export function launcherFor(c: StepContext, env: NodeJS.ProcessEnv, dir: string, cleanup = false): Launcher {
  return new Launcher(env, dir, { marker: c.marker, viaSh: c.plan.viaSh, changesDir: c.changesDir, masker: c.log.masker, ...(cleanup ? { cleanup } : {}) });
}

/**
 * Steps and checks: script_timeout, within what is left of the run, stopped by the run's signal.
 * Backouts and error.d (`cleanup`): their own bound, cleanup_timeout, stopped only by a second
 * signal.
 */
export function runFileOptions(c: StepContext, phase: string, cleanup = false): FileOptions {
  return (name, path) => {
    const source = `${phase}/${name}`;
    return {
      onStart: () => {
        if (c.log.isEnabled('debug')) c.log.debug(`${source}: starting ${path}`); // -v: what runs
        c.onProgress?.([], { phase, step: name });
      },
      timeoutMs: cleanup ? c.phases.cleanupTimeoutMs : c.phases.scriptTimeoutMs,
      ...(cleanup ? {} : { deadline: c.deadline }),
      killGraceMs: c.phases.killGraceMs,
      signal: cleanup ? c.cleanupSignal : c.signal,
      onLine: (line: string) => c.log.step(source, line),
    };
  };
}

/**
 * Queues a step's files in their order. A condition that exits 1 makes the launcher skip what
 * follows it of the step; a step that asks for a reboot makes it stop after its check.
 */
export function queueStep(launcher: Launcher, step: PlannedStep, files: FileOptions, mode: StepMode): QueuedStep {
  const check = step.check && (mode.apply || mode.check) ? step.check : null;
  const follows = (mode.apply ? 1 : 0) + (check ? 1 : 0);
  return {
    step,
    condition: step.condition ? launcher.submit(step.condition, files(`${step.name}.if`, step.condition), { condition: follows }) : null,
    run: mode.apply ? launcher.submit(step.path, files(step.name, step.path), { companions: check ? 1 : 0 }) : null,
    check: check ? launcher.submit(check, files(`${step.name}.check`, check)) : null,
  };
}

/** Waits for a queued step's files and says what they make of it. */
export async function settleStep(q: QueuedStep, attempt: number): Promise<StepOutcome> {
  const [condition, run, check] = [q.condition ? await q.condition : null, q.run ? await q.run : null, q.check ? await q.check : null];
  const { record, failure } = outcomeOf(q.step, condition, run, check, attempt);
  const asked = [run, check].find((r) => r !== null && r !== 'skipped' && r.rebootAsked) as RawStepResult | undefined;
  return { record, failure, rebootAsked: asked && record?.status === 'success' ? asked : null };
}

/**
 * A step's record and failure, from the results of its condition (NAME.if), itself and its check
 * ('skipped': the step failed, or its condition exited 1; null: not queued).
 */
function outcomeOf(
  step: PlannedStep,
  conditionRaw: RawStepResult | 'skipped' | null,
  raw: RawStepResult | 'skipped' | null,
  checkRaw: RawStepResult | 'skipped' | null,
  attempt: number,
): { record: StepRecord | null; failure: Failure | null } {
  if (conditionRaw === 'skipped') throw new Error(`internal: ${step.phase}/${step.name}.if was skipped though nothing before it failed`);
  const condition = conditionRaw && toStepRecord(step.phase, `${step.name}.if`, 'condition', conditionRaw, attempt);
  const whyNot = conditionRaw && failureOf(step, conditionRaw);
  if (condition && conditionRaw && whyNot) {
    const skip = whyNot.kind === 'exit' && conditionRaw.exitCode === StepExit.skip && !conditionRaw.reportsLost;
    const message = skip ? skipReason(step, conditionRaw) : `condition ${step.name}.if: ${whyNot.message}`;
    condition.message = skip ? message : whyNot.message;
    const record: StepRecord = { ...condition, name: step.name, role: 'step', status: skip ? 'skipped' : 'failure', message, output_tail: '', output_truncated: false, changes: [], changes_truncated: false, condition };
    return { record, failure: skip ? null : { ...whyNot, kind: whyNot.kind === 'exit' ? 'condition' : whyNot.kind, message } };
  }
  if (raw === 'skipped') throw new Error(`internal: ${step.phase}/${step.name} was skipped though nothing before it failed`);
  // Not applied: the check, if it ran, stands for the step; else its condition, if it has one.
  const record = raw ? toStepRecord(step.phase, step.name, 'step', raw, attempt) : checkRaw && checkRaw !== 'skipped' ? toStepRecord(step.phase, `${step.name}.check`, 'check', checkRaw, 1) : condition;
  if (!record) return { record: null, failure: null };
  if (raw && condition) record.condition = condition;
  let failure = raw ? failureOf(step, raw) : null;
  if (!failure && checkRaw && checkRaw !== 'skipped') {
    if (raw) record.check = toStepRecord(step.phase, `${step.name}.check`, 'check', checkRaw, 1);
    const checkFailure = failureOf(step, checkRaw);
    if (checkFailure) {
      failure = checkFailure.kind === 'exit' ? { ...checkFailure, kind: 'check', message: `check ${step.name}.check: ${checkFailure.message}` } : checkFailure;
      record.status = 'failure';
      record.message = failure.message;
    }
  }
  return { record, failure };
}

/** A step's NAME.backout on its own (the run failed), with cleanup's bounds. */
export async function runBackout(launcher: Launcher, step: PlannedStep & { backout: string }, files: FileOptions): Promise<StepRecord> {
  const raw = await runAlone(launcher, step.backout, files(`${step.name}.backout`, step.backout));
  return toStepRecord(step.phase, `${step.name}.backout`, 'backout', raw, 1);
}

/** Runs one file on its own: a failure does not keep the next one from running (error.d runs all). */
export async function runAlone(launcher: Launcher, path: string, options: RunOptions): Promise<RawStepResult> {
  const raw = await launcher.submit(path, options);
  launcher.clearFailure();
  if (raw === 'skipped') throw new Error(`internal: ${path} was skipped`);
  return raw;
}
