// What runs after a run failed: the backouts ([phases] backout = failed | all | none: the failed
// step's NAME.backout, then every completed step's, newest first), then error.d. Each file runs
// on its own, with cleanup_timeout, stopped only by a second signal, and sees the failure in
// BOOTSTRAP_FAILED_*; a failing one is logged and does not keep the next from running.

import type { StepRecord } from '../state/journal.js';
import { failureEnvironment, sourcedEnvironment } from './environment.js';
import type { PhasePlan, PlannedStep } from './plan.js';
import { toStepRecord, type Failure } from './step-result.js';
import { launcherFor, runAlone, runBackout, runFileOptions, type StepContext } from './steps.js';

export interface CleanupOptions extends StepContext {
  /**
   * The environment for a phase (environment.d sourced again for each, as os-refresh-config
   * does); throws EnvironmentFileError when a file of environment.d fails.
   */
  environment: (phase: PhasePlan['phase'], cleanup: boolean) => Promise<NodeJS.ProcessEnv>;
  /** The run's environment without environment.d: for clean-up when environment.d fails. */
  baseEnv: NodeJS.ProcessEnv;
}

/** The backouts, then error.d, of a run that failed. */
export async function runCleanup(o: CleanupOptions, failure: Failure, completed: PlannedStep[]): Promise<{ backouts: StepRecord[]; errorSteps: StepRecord[] }> {
  const backouts = await runBackouts(o, failure, completed);
  const errorSteps = await runErrorPhase(o, failure);
  return { backouts, errorSteps };
}

/** `failed`: the failed step's backout; `all`: that, then every completed step's, newest first. */
async function runBackouts(o: CleanupOptions, failure: Failure, completed: PlannedStep[]): Promise<StepRecord[]> {
  if (o.phases.backout === 'none') return [];
  const failedStep = o.plan.phases.flatMap((p) => p.steps).find((s) => s.phase === failure.phase && s.name === failure.step);
  const steps = [...(failedStep ? [failedStep] : []), ...(o.phases.backout === 'all' ? [...completed].reverse().filter((s) => s !== failedStep) : [])];
  const records: StepRecord[] = [];
  const envs = new Map<string, NodeJS.ProcessEnv>();
  for (const step of steps) {
    if (!step.backout) continue;
    const dir = o.plan.phases.find((p) => p.phase === step.phase)!.dir;
    if (!envs.has(step.phase)) envs.set(step.phase, await cleanupEnvironment(o, step.phase));
    const launcher = launcherFor(o, failureEnvironment({ ...envs.get(step.phase)!, BOOTSTRAP_PHASE: step.phase }, failure), dir, true);
    try {
      const record = await runBackout(launcher, { ...step, backout: step.backout }, runFileOptions(o, step.phase, true));
      records.push(record);
      if (record.status === 'failure') o.log.error(`${step.phase}/${step.name}.backout failed: ${record.message}`);
    } finally {
      await launcher.close();
    }
  }
  return records;
}

async function runErrorPhase(o: CleanupOptions, failure: Failure): Promise<StepRecord[]> {
  const phase = o.plan.error;
  if (!phase.exists || phase.steps.length === 0) return [];
  const env = await cleanupEnvironment(o, 'error');
  const launcher = launcherFor(o, failureEnvironment({ ...env, BOOTSTRAP_PHASE: 'error' }, failure), phase.dir, true);
  const files = runFileOptions(o, 'error', true);
  const records: StepRecord[] = [];
  try {
    for (const step of phase.steps) {
      const raw = await runAlone(launcher, step.path, files(step.name, step.path));
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
async function cleanupEnvironment(o: CleanupOptions, phase: PhasePlan['phase']): Promise<NodeJS.ProcessEnv> {
  const sourced = await sourcedEnvironment(o.environment, phase, true);
  if ('env' in sourced) return sourced.env;
  o.log.error(`${sourced.failure.message}; ${phase === 'error' ? 'error.d' : 'backouts'} run without environment.d`);
  return o.baseEnv;
}
