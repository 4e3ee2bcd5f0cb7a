// Runs the phases of a plan: steps in order with their checks and retries; on the first failure
// stop, run backouts (failed | all | none) and then error.d. Only this module turns a step
// result into a failure, through one message ladder.

import type { PhasesConfig } from '../config/config.js';
import type { Logger } from '../log/log.js';
import { stepChanges, type FailureRecord, type PhaseRecord, type StepRecord } from '../state/journal.js';
import { EnvironmentFileError, failureEnvironment } from './environment.js';
import { Launcher, type RawStepResult } from './launcher.js';
import { sortRunParts, type PhasePlan, type Plan, type PlannedStep } from './plan.js';
import { readStepFile, type TextMasker } from './output.js';
import { failureOf, firstLine, skipReason, toFailureRecord, toStepRecord, type Failure } from './step-result.js';

/** For callers that still import it from here (src/run.ts); it lives in ./step-result.js. */
export { toFailureRecord } from './step-result.js';

export interface PipelineOptions {
  plan: Plan;
  /**
   * The environment for a phase (environment.d sourced again for each, as os-refresh-config
   * does); throws EnvironmentFileError when a file of environment.d fails.
   */
  environment: (phase: PhasePlan['phase'], cleanup: boolean) => Promise<NodeJS.ProcessEnv>;
  /** The run's environment without environment.d: for clean-up when environment.d fails. */
  baseEnv: NodeJS.ProcessEnv;
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
  /**
   * Runs before pre-configure.d (the explorers), with the environment of phase `explorer`
   * (environment.d sourced when explorer.d has files); a failure it returns fails the run
   * before any step.
   */
  beforePhases?: (env: NodeJS.ProcessEnv) => Promise<Failure | null>;
  /**
   * A step asked for a reboot (and its check passed): the run records its pause and runs the
   * reboot command. null: the run is paused (nothing more runs); a failure (kind reboot) fails it.
   */
  onReboot?: (at: RebootRequest, phases: PhaseRecord[]) => Promise<Failure | null>;
  /**
   * A run resumed after its reboot: the records of what ran before it, and the step that asked.
   * Steps up to and including that one do not run again; they count as completed for backouts.
   */
  resume?: { after: { phase: string; step: string }; phases: PhaseRecord[] } | undefined;
  /** End a resumed run at once with this failure (server.resume --abandon): backouts and error.d only. */
  abandon?: Failure | undefined;
  /** Runs after migration.d succeeded (the health gate); a failure it returns fails the run. */
  afterPhases?: () => Promise<Failure | null>;
  onStep?: (event: { phase: string; step: string; index: number; total: number }) => void;
  /** The records so far and the step that starts now (null: between phases), for the live journal. */
  onProgress?: (phases: PhaseRecord[], current: { phase: string; step: string } | null) => void;
}

export interface PipelineResult {
  phases: PhaseRecord[];
  failure: FailureRecord | null;
  backouts: StepRecord[];
  errorSteps: StepRecord[];
  /** The run paused for a reboot after this step. */
  paused: RebootRequest | null;
}

export interface RebootRequest {
  phase: string;
  step: string;
  /** The first line the step wrote to BOOTSTRAP_REBOOT_FILE. */
  reason: string;
}

export async function runPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const phases: PhaseRecord[] = [];
  // Progress always reports the records so far, whoever reports it.
  const o: PipelineOptions = { ...options, onProgress: options.onProgress && ((_, current) => options.onProgress!(phases, current)) };
  const completed: PlannedStep[] = [];
  let failure: Failure | null = o.abandon ?? null;
  let paused: RebootRequest | null = null;
  if (o.beforePhases && !failure) {
    const sourced = o.plan.explorers.steps.length ? await phaseEnvironment(o, 'explorer', false) : { env: { ...o.baseEnv, BOOTSTRAP_PHASE: 'explorer' } };
    failure = 'failure' in sourced ? sourced.failure : await o.beforePhases({ ...sourced.env, BOOTSTRAP_PHASE: 'explorer' });
  }
  const total = o.plan.phases.reduce((n, p) => n + p.steps.length, 0);
  let index = 0;

  const resumeAt = o.resume ? o.plan.phases.findIndex((p) => p.phase === o.resume!.after.phase) : -1;
  for (const [at, phase] of o.plan.phases.entries()) {
    // Before the reboot of a resumed run: its records stand, its completed steps count.
    const before = o.resume?.phases.find((p) => p.phase === phase.phase);
    const record: PhaseRecord = before && at <= resumeAt ? { ...before, steps: [...before.steps] } : { phase: phase.phase, dir: phase.dir, status: phase.exists ? 'success' : 'missing', steps: [], duration_ms: 0 };
    phases.push(record);
    const ran = at <= resumeAt ? record.steps : [];
    const done = new Set(ran.filter((s) => s.status === 'success').map((s) => s.name));
    completed.push(...phase.steps.filter((s) => done.has(s.name)));
    // Every step of the plan this run has not handled yet runs (resumeRefusal has made sure that
    // none of them sorts before the step that asked for the reboot).
    const handled = new Set(ran.filter((s) => s.status === 'success' || s.status === 'skipped').map((s) => s.name));
    const steps = phase.steps.filter((s) => !handled.has(s.name));
    if (!phase.exists || (at < resumeAt && steps.length === 0)) continue;
    if (failure || paused) {
      if (record.steps.length === 0) record.status = paused ? 'pending' : 'not run';
      continue;
    }
    const t0 = performance.now();
    const outcome = await runPhase(o, phase, steps, record, completed, () => ++index, total);
    record.duration_ms += Math.round(performance.now() - t0);
    if (outcome && 'reason' in outcome) {
      record.status = 'paused';
      failure = o.onReboot ? await o.onReboot(outcome, phases) : { phase: outcome.phase, step: outcome.step, kind: 'reboot', exitCode: null, message: 'asked for a reboot, which this caller cannot do' };
      if (!failure) paused = outcome;
      else record.status = 'failure';
    } else {
      failure = outcome;
      record.status = failure ? 'failure' : 'success';
    }
    o.onProgress?.(phases, null);
  }
  if (!failure && !paused && o.afterPhases) failure = await o.afterPhases();

  const result: PipelineResult = { phases, failure: failure ? toFailureRecord(failure) : null, backouts: [], errorSteps: [], paused };
  if (!failure) return result;
  o.log.error(`${failure.phase}/${failure.step} failed: ${failure.message}`);
  result.backouts = await runBackouts(o, failure, completed);
  result.errorSteps = await runErrorPhase(o, failure);
  return result;
}

/**
 * Why a run paused for a reboot cannot resume on the plan as it is now, or null. It resumes after
 * the step that asked, and runs every step of the plan it has not handled (succeeded, or skipped
 * by its .if; by phase and name, as its journal records them): a step it has not handled that
 * now sorts before that point (added, or renamed, while the run waited) would run out of its
 * order, after steps meant to follow it, so the resume is refused instead.
 */
export function resumeRefusal(plan: Plan, ran: PhaseRecord[], after: { phase: string; step: string }): string | null {
  const resumeAt = plan.phases.findIndex((p) => p.phase === after.phase);
  const missed: string[] = [];
  for (const [at, phase] of plan.phases.entries()) {
    if (at > resumeAt || !phase.exists) continue;
    const handled = new Set((ran.find((p) => p.phase === phase.phase)?.steps ?? []).filter((s) => s.status === 'success' || s.status === 'skipped').map((s) => s.name));
    const before = at < resumeAt ? phase.steps : phase.steps.filter((s) => sortRunParts([s.name, after.step])[0] === s.name);
    missed.push(...before.filter((s) => !handled.has(s.name)).map((s) => `${s.phase}/${s.name}`));
  }
  if (missed.length === 0) return null;
  const named = missed.length > 5 ? `${missed.slice(0, 5).join(', ')} and ${missed.length - 5} more` : missed.join(', ');
  return `${named} ${missed.length === 1 ? 'sorts' : 'sort'} before ${after.phase}/${after.step}, where the run paused for its reboot, and never ran in it (added or renamed while it waited)`;
}

/** The phase's environment, or the failure of the environment.d file that broke it. */
async function phaseEnvironment(o: PipelineOptions, phase: PhasePlan['phase'], cleanup: boolean): Promise<{ env: NodeJS.ProcessEnv } | { failure: Failure }> {
  try {
    return { env: await o.environment(phase, cleanup) };
  } catch (err) {
    if (!(err instanceof EnvironmentFileError)) throw err;
    return { failure: { phase, step: `environment.d/${err.file.split('/').at(-1)}`, kind: err.kind, exitCode: null, message: err.message } };
  }
}

async function runPhase(o: PipelineOptions, phase: PhasePlan, steps: PlannedStep[], record: PhaseRecord, completed: PlannedStep[], next: () => number, total: number): Promise<Failure | RebootRequest | null> {
  if (steps.length === 0) return null;
  const sourced = await phaseEnvironment(o, phase.phase, false);
  if ('failure' in sourced) return sourced.failure;
  const launcher = new Launcher({ ...sourced.env, BOOTSTRAP_PHASE: phase.phase }, phase.dir, launcherOptions(o));
  try {
    let from = 0;
    let attempt = 1;
    // What the failed attempts of the current step reported: part of its record all the same.
    let earlier: StepRecord[] = [];
    while (from < steps.length) {
      // Queue every remaining step with its condition and check: no step waits for a round trip
      // through us. A condition that exits 1 makes the launcher skip the step and its check; a
      // step that asks for a reboot makes it stop after its check.
      const queued = steps.slice(from).map((step) => ({
        step,
        condition: step.condition ? launcher.submit(step.condition, runOptions(o, step.phase, `${step.name}.if`, step.condition), { condition: step.check ? 2 : 1 }) : null,
        run: launcher.submit(step.path, runOptions(o, step.phase, step.name, step.path), { companions: step.check ? 1 : 0 }),
        check: step.check ? launcher.submit(step.check, runOptions(o, step.phase, `${step.name}.check`, step.check)) : null,
      }));
      let retry = false;
      for (const q of queued) {
        const index = next();
        if (attempt === 1) o.onStep?.({ phase: phase.phase, step: q.step.name, index, total });
        const [condition, run, check] = [q.condition ? await q.condition : null, await q.run, q.check ? await q.check : null];
        const { stepRecord, failure } = outcomeOf(q.step, condition, run, check, attempt);
        withEarlierChanges(stepRecord, earlier);
        if (stepRecord.status === 'skipped') o.log.info(`${q.step.phase}/${q.step.name}: skipped (${stepRecord.message})`);
        if (!failure) {
          record.steps.push(stepRecord);
          if (stepRecord.status === 'success') completed.push(q.step);
          from++;
          attempt = 1;
          earlier = [];
          const asked = [run, check].find((r) => r !== null && r !== 'skipped' && r.rebootAsked) as RawStepResult | undefined;
          if (asked && stepRecord.status === 'success') {
            const reason = rebootReason(asked.rebootFile, o.log.masker);
            stepRecord.reboot = reason;
            o.log.warn(`${q.step.phase}/${q.step.name} asks for a reboot: ${reason}`);
            return { phase: q.step.phase, step: q.step.name, reason };
          }
          continue;
        }
        const retryable = failure.kind !== 'signal' && !o.signal.aborted && Date.now() + o.phases.retryDelayMs < o.deadline;
        if (attempt <= o.phases.retries && retryable) {
          o.log.warn(`${q.step.phase}/${q.step.name} failed (${failure.message}); retrying in ${o.phases.retryDelayMs / 1000} s (attempt ${attempt + 1} of ${o.phases.retries + 1})`);
          await delay(o.phases.retryDelayMs, o.signal);
          launcher.clearFailure();
          earlier = [stepRecord]; // it carries the attempts before it
          attempt++;
          retry = true;
          break;
        }
        record.steps.push(stepRecord);
        return failure;
      }
      if (!retry) break;
    }
    return null;
  } finally {
    await launcher.close();
  }
}

/**
 * Adds what the step's failed attempts reported (changes of the step, its check, its .if) before
 * its own changes, which are then the whole step's: a change made by an attempt that failed and
 * was retried is still a change of the run.
 */
function withEarlierChanges(record: StepRecord, earlier: StepRecord[]): void {
  const before = earlier.flatMap(stepChanges);
  const truncated = earlier.some((e) => e.changes_truncated || e.check?.changes_truncated || e.condition?.changes_truncated);
  if (before.length === 0 && !truncated) return;
  record.changes = [...before, ...(record.changes ?? [])];
  record.changes_truncated = Boolean(record.changes_truncated) || truncated;
}

/**
 * A step's record and failure, from the results of its condition (NAME.if), itself and its check
 * ('skipped': the step failed, or its condition exited 1).
 */
function outcomeOf(
  step: PlannedStep,
  conditionRaw: RawStepResult | 'skipped' | null,
  raw: RawStepResult | 'skipped',
  checkRaw: RawStepResult | 'skipped' | null,
  attempt: number,
): { stepRecord: StepRecord; failure: Failure | null } {
  if (conditionRaw === 'skipped') throw new Error(`internal: ${step.phase}/${step.name}.if was skipped though nothing before it failed`);
  if (conditionRaw) {
    const condition = toStepRecord(step.phase, `${step.name}.if`, 'condition', conditionRaw, attempt);
    const whyNot = failureOf(step, conditionRaw);
    if (whyNot) {
      const skip = whyNot.kind === 'exit' && conditionRaw.exitCode === 1 && !conditionRaw.reportsLost;
      const message = skip ? skipReason(step, conditionRaw) : `condition ${step.name}.if: ${whyNot.message}`;
      condition.message = skip ? message : whyNot.message;
      const stepRecord: StepRecord = { ...condition, name: step.name, role: 'step', status: skip ? 'skipped' : 'failure', message, output_tail: '', output_truncated: false, changes: [], changes_truncated: false, condition };
      return { stepRecord, failure: skip ? null : { ...whyNot, kind: whyNot.kind === 'exit' ? 'condition' : whyNot.kind, message } };
    }
  }
  if (raw === 'skipped') throw new Error(`internal: ${step.phase}/${step.name} was skipped though nothing before it failed`);
  const stepRecord = toStepRecord(step.phase, step.name, 'step', raw, attempt);
  if (conditionRaw) stepRecord.condition = toStepRecord(step.phase, `${step.name}.if`, 'condition', conditionRaw, attempt);
  let failure = failureOf(step, raw);
  if (!failure && checkRaw && checkRaw !== 'skipped') {
    stepRecord.check = toStepRecord(step.phase, `${step.name}.check`, 'check', checkRaw, 1);
    const checkFailure = failureOf(step, checkRaw);
    if (checkFailure) {
      failure = checkFailure.kind === 'exit' ? { ...checkFailure, kind: 'check', message: `check ${step.name}.check: ${checkFailure.message}` } : checkFailure;
      stepRecord.status = 'failure';
      stepRecord.message = failure.message;
    }
  }
  return { stepRecord, failure };
}

/**
 * The first line a step wrote to its BOOTSTRAP_REBOOT_FILE (the launcher saw it created it: a
 * reason lost to a full filesystem still asks), secrets masked.
 */
function rebootReason(file: string | null, masker: TextMasker): string {
  try {
    return firstLine(file ? readStepFile(file, 4096, masker).text : '') ?? 'no reason given';
  } catch {
    return 'no reason given';
  }
}

function launcherOptions(o: PipelineOptions) {
  return { marker: o.marker, viaSh: o.plan.viaSh, changesDir: o.changesDir, masker: o.log.masker };
}

/**
 * Steps and checks: script_timeout, within what is left of the run, stopped by the run's signal.
 * Backouts and error.d (`cleanup`): their own bound, cleanup_timeout, stopped only by a second
 * signal.
 */
function runOptions(o: PipelineOptions, phase: string, step: string, path: string, cleanup = false) {
  const source = `${phase}/${step}`;
  return {
    onStart: () => {
      if (o.log.isEnabled('debug')) o.log.debug(`${source}: starting ${path}`); // -v: what runs
      o.onProgress?.([], { phase, step });
    },
    timeoutMs: cleanup ? o.phases.cleanupTimeoutMs : o.phases.scriptTimeoutMs,
    deadline: cleanup ? undefined : o.deadline,
    killGraceMs: o.phases.killGraceMs,
    signal: cleanup ? o.cleanupSignal : o.signal,
    onLine: (line: string) => o.log.step(source, line),
  };
}

/** `failed`: the failed step's backout; `all`: that, then every completed step's, newest first. */
async function runBackouts(o: PipelineOptions, failure: Failure, completed: PlannedStep[]): Promise<StepRecord[]> {
  if (o.phases.backout === 'none') return [];
  const failedStep = o.plan.phases.flatMap((p) => p.steps).find((s) => s.phase === failure.phase && s.name === failure.step);
  const steps = [...(failedStep ? [failedStep] : []), ...(o.phases.backout === 'all' ? [...completed].reverse().filter((s) => s !== failedStep) : [])];
  const records: StepRecord[] = [];
  const envs = new Map<string, NodeJS.ProcessEnv>();
  for (const step of steps) {
    if (!step.backout) continue;
    const dir = o.plan.phases.find((p) => p.phase === step.phase)!.dir;
    if (!envs.has(step.phase)) envs.set(step.phase, await cleanupEnvironment(o, step.phase));
    const launcher = new Launcher(failureEnvironment({ ...envs.get(step.phase)!, BOOTSTRAP_PHASE: step.phase }, failure), dir, { ...launcherOptions(o), cleanup: true });
    try {
      const raw = await runAlone(launcher, step.backout, runOptions(o, step.phase, `${step.name}.backout`, step.backout, true));
      const record = toStepRecord(step.phase, `${step.name}.backout`, 'backout', raw, 1);
      records.push(record);
      if (record.status === 'failure') o.log.error(`${step.phase}/${step.name}.backout failed: ${record.message}`);
    } finally {
      await launcher.close();
    }
  }
  return records;
}

async function runErrorPhase(o: PipelineOptions, failure: Failure): Promise<StepRecord[]> {
  const phase = o.plan.error;
  if (!phase.exists || phase.steps.length === 0) return [];
  const env = await cleanupEnvironment(o, 'error');
  const launcher = new Launcher(failureEnvironment({ ...env, BOOTSTRAP_PHASE: 'error' }, failure), phase.dir, { ...launcherOptions(o), cleanup: true });
  const records: StepRecord[] = [];
  try {
    for (const step of phase.steps) {
      const raw = await runAlone(launcher, step.path, runOptions(o, 'error', step.name, step.path, true));
      const record = toStepRecord('error', step.name, 'error', raw, 1);
      records.push(record);
      if (record.status === 'failure') o.log.error(`error/${step.name} failed: ${record.message}`);
    }
  } finally {
    await launcher.close();
  }
  return records;
}

/**
 * The environment for backouts and error.d: environment.d sourced again; if that fails, the
 * run's own environment (the clean-up must still run), and the failure is logged.
 */
async function cleanupEnvironment(o: PipelineOptions, phase: PhasePlan['phase']): Promise<NodeJS.ProcessEnv> {
  const sourced = await phaseEnvironment(o, phase, true);
  if ('env' in sourced) return sourced.env;
  o.log.error(`${sourced.failure.message}; ${phase === 'error' ? 'error.d' : 'backouts'} run without environment.d`);
  return o.baseEnv;
}

/** Runs one file on its own: a failure does not keep the next one from running (error.d runs all). */
async function runAlone(launcher: Launcher, path: string, options: ReturnType<typeof runOptions>): Promise<RawStepResult> {
  const raw = await launcher.submit(path, options);
  launcher.clearFailure();
  if (raw === 'skipped') throw new Error(`internal: ${path} was skipped`);
  return raw;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
