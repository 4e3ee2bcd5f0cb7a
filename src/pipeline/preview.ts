// --dry-run's preview: which steps a run would run and which it would skip. It runs each step's
// NAME.if (a condition must not change the system) with the environment the step would get, in
// run order, and nothing else. A condition that reads what an earlier step writes sees the
// server as it is now, not as that step would leave it: the preview says what a run started now
// would decide for every condition that depends only on the server and its configuration.

import type { PhasesConfig } from '../config/config.js';
import type { Logger } from '../log/log.js';
import { failureOf, skipReason } from './step-result.js';
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
export function mayReboot(path: string): boolean {
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
}

/** Every step of the run phases in order, with its verdict. */
export async function previewSteps(o: PreviewOptions): Promise<StepPreview[]> {
  const out: StepPreview[] = [];
  for (const phase of o.plan.phases) {
    if (!phase.exists || phase.steps.length === 0) continue;
    const conditional = phase.steps.filter((s) => s.condition);
    if (conditional.length === 0) {
      out.push(...phase.steps.map((s) => ({ phase: phase.phase, step: s.name, verdict: 'run' as const, reason: null, may_reboot: mayReboot(s.path) })));
      continue;
    }
    const env = await o.environment(phase.phase);
    const launcher = new Launcher({ ...env, BOOTSTRAP_PHASE: phase.phase }, phase.dir, { marker: o.marker, viaSh: o.plan.viaSh, masker: o.log.masker });
    try {
      for (const step of phase.steps) {
        const may_reboot = mayReboot(step.path);
        if (!step.condition) {
          out.push({ phase: phase.phase, step: step.name, verdict: 'run', reason: null, may_reboot });
          continue;
        }
        const source = `${phase.phase}/${step.name}.if`;
        const raw = await launcher.submit(step.condition, {
          timeoutMs: o.phases.scriptTimeoutMs,
          killGraceMs: o.phases.killGraceMs,
          ...(o.signal ? { signal: o.signal } : {}),
          onLine: (line) => o.log.step(source, line),
        });
        launcher.clearFailure();
        if (raw === 'skipped') throw new Error(`internal: ${source} was skipped`);
        const failure = failureOf(step, raw);
        if (!failure) out.push({ phase: phase.phase, step: step.name, verdict: 'run', reason: null, may_reboot });
        else if (failure.kind === 'exit' && raw.exitCode === 1) {
          out.push({ phase: phase.phase, step: step.name, verdict: 'skip', reason: skipReason(step, raw), may_reboot });
        } else out.push({ phase: phase.phase, step: step.name, verdict: 'fail', reason: `condition ${step.name}.if: ${failure.message}`, may_reboot });
      }
    } finally {
      await launcher.close();
    }
  }
  return out;
}
