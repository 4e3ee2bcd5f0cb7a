// --dry-run's preview: which steps a run would run and which it would skip. It asks the step
// runner (steps.ts) with apply false and no checks, so it runs each step's NAME.if (a condition
// must not change the system) with the environment the step would get, in run order, and
// nothing else. A condition that reads what an earlier step writes sees the
// server as it is now, not as that step would leave it: the preview says what a run started now
// would decide for every condition that depends only on the server and its configuration.

import type { PhasesConfig } from '../config/config.js';
import type { Logger } from '../log/log.js';
import { queueStep, settleStep, type FileOptions } from './steps.js';
import { Launcher } from './launcher.js';
import { readHeadSync } from '../util/files.js';
import type { Plan } from './plan.js';

export interface StepPreview {
  phase: string;
  step: string;
  /** run: no condition, or it exited 0; skip: it exited 1; fail: anything else (the run would fail here). */
  verdict: 'run' | 'skip' | 'fail';
  /** The condition's first line of output (skip), or how it failed. */
  reason: string | null;
  /** The step says it may ask for a reboot: a `# bootstrap: may-reboot` line near its top. */
  may_reboot: boolean;
}

/** Whether a step says it may ask for a reboot (nothing is guessed from what it does). */
function mayReboot(path: string): boolean {
  try {
    return /^#\s*bootstrap:\s*may-reboot\b/m.test(readHeadSync(path, 4096).text);
  } catch {
    return false;
  }
}

export interface PreviewOptions {
  plan: Plan;
  /** The phase's environment (environment.d sourced), as the run would give it. */
  environment: (phase: string) => Promise<NodeJS.ProcessEnv>;
  marker: string;
  phases: PhasesConfig;
  log: Logger;
  signal?: AbortSignal | undefined;
  /** Also run each step's NAME.check (a verify: is the server still as configured?). The dry run does not. */
  check?: boolean | undefined;
}

/** Every step of the run phases in order, with its verdict. */
export async function previewSteps(o: PreviewOptions): Promise<StepPreview[]> {
  const out: StepPreview[] = [];
  for (const phase of o.plan.phases) {
    if (!phase.exists || phase.steps.length === 0) continue;
    const asked = phase.steps.filter((s) => s.condition || (o.check && s.check));
    if (asked.length === 0) {
      out.push(...phase.steps.map((s) => ({ phase: phase.phase, step: s.name, verdict: 'run' as const, reason: null, may_reboot: mayReboot(s.path) })));
      continue;
    }
    const env = await o.environment(phase.phase);
    const launcher = new Launcher({ ...env, BOOTSTRAP_PHASE: phase.phase }, phase.dir, { marker: o.marker, viaSh: o.plan.viaSh, masker: o.log.masker });
    // A condition is bounded as in a run (script_timeout); a dry run has no deadline.
    const files: FileOptions = (name) => ({
      timeoutMs: o.phases.scriptTimeoutMs,
      killGraceMs: o.phases.killGraceMs,
      ...(o.signal ? { signal: o.signal } : {}),
      onLine: (line) => o.log.step(`${phase.phase}/${name}`, line),
    });
    try {
      for (const step of phase.steps) {
        // One at a time: a file that failed does not keep the next from being asked.
        const { record, failure } = await settleStep(queueStep(launcher, step, files, { apply: false, check: o.check ?? false }), 1);
        if (failure) launcher.clearFailure();
        const verdict = failure ? 'fail' : record?.status === 'skipped' ? 'skip' : 'run';
        out.push({ phase: phase.phase, step: step.name, verdict, reason: failure ? failure.message : verdict === 'skip' ? record!.message : null, may_reboot: mayReboot(step.path) });
      }
    } finally {
      await launcher.close();
    }
  }
  return out;
}
