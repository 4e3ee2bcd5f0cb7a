// Runs the phases of a plan: explorers first (beforePhases), then each phase's steps in order
// through the step runner (steps.ts), with retries; a step's reboot request pauses the run; a
// run resumed after its reboot skips what ran before it. On the first failure it stops, and the
// backouts and error.d run (cleanup.ts). What a result means is said once, in step-result.ts.

import { stepChanges, type FailureRecord, type PhaseRecord, type StepRecord } from '../state/journal.js';
import { runCleanup, type CleanupOptions } from './cleanup.js';
import { sourcedEnvironment } from './environment.js';
import type { RawStepResult } from './launcher.js';
import { readStepFile, type TextMasker } from './output.js';
import { sortRunParts, type PhasePlan, type Plan, type PlannedStep } from './plan.js';
import { firstLine, toFailureRecord, type Failure } from './step-result.js';
import { launcherFor, queueStep, runFileOptions, settleStep } from './steps.js';
import { monotonicMs } from '../util/clock.js';

export interface PipelineOptions extends CleanupOptions {
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
    const sourced = o.plan.explorers.steps.length ? await sourcedEnvironment(o.environment, 'explorer', false) : { env: { ...o.baseEnv, BOOTSTRAP_PHASE: 'explorer' } };
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
    const t0 = monotonicMs();
    const outcome = await runPhase(o, phase, steps, record, completed, () => ++index, total);
    record.duration_ms += Math.round(monotonicMs() - t0);
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
  return { ...result, ...(await runCleanup(o, failure, completed)) };
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

async function runPhase(o: PipelineOptions, phase: PhasePlan, steps: PlannedStep[], record: PhaseRecord, completed: PlannedStep[], next: () => number, total: number): Promise<Failure | RebootRequest | null> {
  if (steps.length === 0) return null;
  const sourced = await sourcedEnvironment(o.environment, phase.phase, false);
  if ('failure' in sourced) return sourced.failure;
  const launcher = launcherFor(o, { ...sourced.env, BOOTSTRAP_PHASE: phase.phase }, phase.dir);
  const files = runFileOptions(o, phase.phase);
  try {
    let from = 0;
    let attempt = 1;
    // What the failed attempts of the current step reported: part of its record all the same.
    let earlier: StepRecord[] = [];
    while (from < steps.length) {
      // Queue every remaining step with its condition and check: no step waits for a round trip through us.
      const queued = steps.slice(from).map((step) => queueStep(launcher, step, files, { apply: true }));
      let retry = false;
      for (const q of queued) {
        const index = next();
        if (attempt === 1) o.onStep?.({ phase: phase.phase, step: q.step.name, index, total });
        const { record: stepRecord, failure, rebootAsked } = await settleStep(q, attempt);
        if (!stepRecord) throw new Error(`internal: ${q.step.phase}/${q.step.name} ran and has no record`);
        withEarlierChanges(stepRecord, earlier);
        if (stepRecord.status === 'skipped') o.log.info(`${q.step.phase}/${q.step.name}: skipped (${stepRecord.message})`);
        if (!failure) {
          countUnreported(o, stepRecord);
          record.steps.push(stepRecord);
          if (stepRecord.status === 'success') completed.push(q.step);
          from++;
          attempt = 1;
          earlier = [];
          if (rebootAsked) return askReboot(o, q.step, stepRecord, rebootAsked);
          continue;
        }
        if (attempt <= o.phases.retries && retryable(o, failure)) {
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
 * `[phases] unreported = changed`: a step that ran and reported nothing is recorded as counted
 * changed, at record time, so its journal counts the same whatever the ini says later.
 */
function countUnreported(o: PipelineOptions, record: StepRecord): void {
  if (o.phases.unreported === 'changed' && record.status === 'success' && stepChanges(record).length === 0) record.unreported = 'changed';
}

/** A failed step is tried again unless the agent was asked to stop or the delay would end the run. */
function retryable(o: PipelineOptions, failure: Failure): boolean {
  return failure.kind !== 'signal' && !o.signal.aborted && Date.now() + o.phases.retryDelayMs < o.deadline;
}

/** A step (or its check) asked for a reboot: its reason goes into its record and the log. */
function askReboot(o: PipelineOptions, step: PlannedStep, stepRecord: StepRecord, asked: RawStepResult): RebootRequest {
  const reason = rebootReason(asked.rebootFile, o.log.masker);
  stepRecord.reboot = reason;
  o.log.warn(`${step.phase}/${step.name} asks for a reboot: ${reason}`);
  return { phase: step.phase, step: step.name, reason };
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
