// Runs checks in parallel, each bounded by its own timeout: a checkup takes about the longest
// timeout, whatever hangs.

import { checkHeartbeat, type HeartbeatSpec } from './kinds.js';
import type { CheckResult, CheckVerdict, Checkup } from './types.js';
import { Masker } from '../log/mask.js';
import type { TextMasker } from '../pipeline/output.js';
import { monotonicMs } from '../util/clock.js';

/**
 * `env`: the agent's environment, which an exec check's command gets (and finds its program on);
 * `masker`: secrets out of what a check says (an exec check's output), before it is cut, kept or shown.
 */
async function runCheck(spec: HeartbeatSpec, env: NodeJS.ProcessEnv, masker: TextMasker = new Masker()): Promise<CheckResult> {
  const t0 = monotonicMs();
  const signal = AbortSignal.timeout(spec.timeoutMs);
  // Belt and braces: even a kind's check that ignored its signal cannot outlive the timeout by much.
  let timer: NodeJS.Timeout | undefined;
  const hardStop = new Promise<CheckVerdict>((resolve) => {
    timer = setTimeout(() => resolve({ healthy: false, detail: `no verdict within ${spec.timeoutMs / 1000} s` }), spec.timeoutMs + 250);
  });
  let verdict: CheckVerdict;
  try {
    verdict = await Promise.race([checkHeartbeat(spec, { signal, env, masker }), hardStop]);
  } catch (err) {
    verdict = { healthy: false, detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
  if (!verdict.healthy && signal.aborted && !/in time|within/.test(verdict.detail)) verdict = { ...verdict, detail: `${verdict.detail} (timed out after ${spec.timeoutMs / 1000} s)` };
  return { name: spec.name, type: spec.type, healthy: verdict.healthy, latency_ms: Math.round(monotonicMs() - t0), detail: masker.mask(verdict.detail) };
}

/** Every check in parallel; `env` is the agent's (never this process's by default: an Agent may be given another). */
export async function runCheckup(specs: HeartbeatSpec[], env: NodeJS.ProcessEnv, masker?: TextMasker): Promise<Checkup> {
  const started = new Date();
  const results = await Promise.all(specs.map((s) => runCheck(s, env, masker)));
  return { healthy: results.every((r) => r.healthy), started_at: started.toISOString(), finished_at: new Date().toISOString(), results };
}

/**
 * The checkup of a mode (heartbeat.checkup: the mode in force; the health gate: the run's target
 * mode): the checks that belong to it run; the others are listed in `not_run`.
 */
export async function runCheckupOfMode(specs: HeartbeatSpec[], mode: string, env: NodeJS.ProcessEnv, masker?: TextMasker): Promise<Checkup> {
  const inMode = specs.filter((s) => belongsTo(s, mode));
  const checkup = await runCheckup(inMode, env, masker);
  const notRun = specs.filter((s) => !belongsTo(s, mode)).map((s) => ({ name: s.name, type: s.type, modes: s.modes ?? [] }));
  return { ...checkup, mode, not_run: notRun };
}

/** Whether the check belongs to `mode` (no `modes`: every mode). */
export function belongsTo(spec: HeartbeatSpec, mode: string): boolean {
  return spec.modes === null || spec.modes.includes(mode);
}
