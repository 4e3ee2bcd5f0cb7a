// server.verify's steps: each applicable step's NAME.if and NAME.check, asked through the one
// step runner with apply false (pipeline/steps.ts), so the step, its backout and error.d never
// run; and what their results make of the step: ok, drift, no check, skipped, or error (the check
// or the NAME.if could not say).

import type { PhasesConfig } from '../config/config.js';
import { EnvironmentFileError } from '../pipeline/environment.js';
import type { Launcher, RawStepResult } from '../pipeline/launcher.js';
import type { Plan, PlannedStep } from '../pipeline/plan.js';
import { failureOf, firstLine, toStepRecord, type Failure } from '../pipeline/step-result.js';
import { launcherFor, queueStep, runFileOptions, settleStep, type FileOptions, type StepContext } from '../pipeline/steps.js';
import type { Logger } from '../log/log.js';
import type { FailureRecord, PhaseRecord, StepRecord, StepVerdict, VerifyResult, VerifySummary } from '../state/journal.js';

export interface VerifyOptions {
  plan: Plan;
  phases: PhasesConfig;
  log: Logger;
  marker: string;
  deadline: number;
  signal: AbortSignal;
  /** A phase's environment (environment.d sourced), as a run would give it; throws EnvironmentFileError. */
  environment: (phase: string) => Promise<NodeJS.ProcessEnv>;
}

/** The phases' records (each step's `verify` result in it) and, when environment.d broke a phase, where. */
export interface StepsVerified {
  phases: PhaseRecord[];
  stopped: FailureRecord | null;
}

/** Each step of the run phases in order: its NAME.if, then its NAME.check; nothing else. */
export async function verifySteps(o: VerifyOptions): Promise<StepsVerified> {
  const c: StepContext = { plan: o.plan, marker: o.marker, phases: o.phases, log: o.log, signal: o.signal, cleanupSignal: o.signal, deadline: o.deadline, changesDir: null };
  const phases: PhaseRecord[] = [];
  for (const phase of o.plan.phases) {
    const started = Date.now();
    const record: PhaseRecord = { phase: phase.phase, dir: phase.dir, status: phase.exists ? 'success' : 'missing', steps: [], duration_ms: 0 };
    phases.push(record);
    if (!phase.exists || phase.steps.length === 0) continue;
    // environment.d is sourced, and a launcher started, only for a phase that has something to ask (as the dry run does).
    if (!phase.steps.some((s) => s.condition || s.check)) {
      record.steps.push(...phase.steps.map((s) => stepRecord(s, new Date().toISOString(), 'no check', null, null, null)));
      continue;
    }
    let env: NodeJS.ProcessEnv;
    try {
      env = await o.environment(phase.phase);
    } catch (err) {
      if (!(err instanceof EnvironmentFileError)) throw err;
      Object.assign(record, { status: 'failure', duration_ms: Date.now() - started });
      return { phases, stopped: { phase: phase.phase, step: `environment.d/${err.file.split('/').at(-1)}`, kind: err.kind, exit_code: null, message: err.message } };
    }
    const launcher = launcherFor(c, { ...env, BOOTSTRAP_PHASE: phase.phase }, phase.dir);
    try {
      for (const step of phase.steps) record.steps.push(await verifyStep(launcher, step, runFileOptions(c, phase.phase)));
    } finally {
      await launcher.close();
    }
    if (record.steps.some((s) => s.status === 'failure')) record.status = 'failure';
    record.duration_ms = Date.now() - started;
  }
  return { phases, stopped: null };
}

/** One step, one at a time: a check that failed does not keep the next step from being asked. */
async function verifyStep(launcher: Launcher, step: PlannedStep, files: FileOptions): Promise<StepRecord> {
  const startedAt = new Date().toISOString();
  const queued = queueStep(launcher, step, files, { apply: false, check: true });
  const outcome = await settleStep(queued, 1);
  if (outcome.failure) launcher.clearFailure();
  const condition = queued.condition ? await queued.condition : null;
  const check = queued.check ? await queued.check : null;
  const ran = (r: RawStepResult | 'skipped' | null): r is RawStepResult => r !== null && r !== 'skipped';
  const conditionRecord = ran(condition) ? toStepRecord(step.phase, `${step.name}.if`, 'condition', condition, 1) : null;
  const checkRecord = ran(check) ? toStepRecord(step.phase, `${step.name}.check`, 'check', check, 1) : null;
  const { result, message } = verdictOf(step, outcome.record, outcome.failure, ran(condition) ? condition : null, ran(check) ? check : null);
  if (conditionRecord && result === 'skipped') conditionRecord.message = message ?? conditionRecord.message;
  return stepRecord(step, startedAt, result, message, conditionRecord, checkRecord);
}

/** The journal's record of a verified step: the step's, with its NAME.if and NAME.check in it. */
function stepRecord(step: PlannedStep, startedAt: string, result: VerifyResult, message: string | null, condition: StepRecord | null, check: StepRecord | null): StepRecord {
  return {
    phase: step.phase,
    name: step.name,
    role: 'step',
    status: result === 'drift' || result === 'error' ? 'failure' : result === 'skipped' ? 'skipped' : 'success',
    exit_code: check?.exit_code ?? null,
    signal: null,
    timed_out: false,
    started_at: startedAt,
    duration_ms: 0, // the step itself never runs; its NAME.if and NAME.check have their own records
    attempts: 0,
    message: message ?? result,
    output_tail: '',
    output_truncated: false,
    check,
    condition,
    changes: [],
    changes_truncated: false,
    verify: result,
  };
}

/**
 * What the step runner's judgement and the files' results make of a step. The skip rule (exit 1,
 * reports intact) is the runner's; a check's exit status, whatever it is, is its answer (drift);
 * a check that timed out, was killed or could not start gave none (error).
 */
function verdictOf(step: PlannedStep, record: StepRecord | null, failure: Failure | null, condition: RawStepResult | null, check: RawStepResult | null): { result: VerifyResult; message: string | null } {
  if (record?.status === 'skipped') return { result: 'skipped', message: record.message };
  if (condition && failureOf(step, condition)) return { result: 'error', message: failure?.message ?? `${step.name}.if failed` };
  if (!check) return { result: 'no check', message: null };
  const f = failureOf(step, check);
  if (!f) return { result: 'ok', message: null };
  if (f.kind === 'exit' && check.exitCode !== null && !check.error) {
    const said = firstLine(check.output);
    return { result: 'drift', message: said ? `${said} (${f.message})` : `${step.name}.check: ${f.message}` };
  }
  return { result: 'error', message: `${step.name}.check: ${f.message}` };
}

/** The summary: `error` when a check could not run (or the verify stopped), else `drift` when one failed, else `ok`. */
export function summarize(verdicts: StepVerdict[], stopped: boolean): VerifySummary {
  const n = (r: VerifyResult) => verdicts.filter((v) => v.result === r).length;
  const counts = { ok: n('ok'), drift: n('drift'), no_check: n('no check'), skipped: n('skipped'), error: n('error') };
  return { status: stopped || counts.error > 0 ? 'error' : counts.drift > 0 ? 'drift' : 'ok', ...counts };
}

/** Where the journal says the verify went wrong: the first step that could not be checked, else the first that drifted. */
export function firstProblem(phases: PhaseRecord[]): FailureRecord | null {
  const steps = phases.flatMap((p) => p.steps);
  const s = steps.find((x) => x.verify === 'error') ?? steps.find((x) => x.verify === 'drift');
  if (!s) return null;
  const via = s.check ?? s.condition;
  const kind = s.verify === 'drift' ? 'check' : via?.timed_out ? 'timeout' : via?.signal ? 'signal' : via?.role === 'condition' ? 'condition' : 'exit';
  return { phase: s.phase, step: s.name, kind, exit_code: via?.exit_code ?? null, message: s.message };
}
