// Runs checks in parallel, each bounded by its own timeout: a checkup takes about the longest
// timeout, whatever hangs.

import type { HeartbeatSpec } from '../config/config.js';
import { checkExec, checkHttp, checkTcp } from './checks.js';
import { checkHaproxy } from './haproxy.js';
import type { CheckResult, CheckVerdict, Checkup } from './types.js';

const checkers: Record<HeartbeatSpec['type'], (spec: HeartbeatSpec, signal: AbortSignal) => Promise<CheckVerdict>> = {
  haproxy: checkHaproxy,
  http: checkHttp,
  tcp: checkTcp,
  exec: checkExec,
};

/** `mask`: secrets out of what a check says (an exec check's output), before it is kept or shown. */
export async function runCheck(spec: HeartbeatSpec, mask: (text: string) => string = (t) => t): Promise<CheckResult> {
  const t0 = performance.now();
  const signal = AbortSignal.timeout(spec.timeoutMs);
  // Belt and braces: even a checker that ignored its signal cannot outlive the timeout by much.
  let timer: NodeJS.Timeout | undefined;
  const hardStop = new Promise<CheckVerdict>((resolve) => {
    timer = setTimeout(() => resolve({ healthy: false, detail: `no verdict within ${spec.timeoutMs / 1000} s` }), spec.timeoutMs + 250);
  });
  let verdict: CheckVerdict;
  try {
    verdict = await Promise.race([checkers[spec.type](spec, signal), hardStop]);
  } catch (err) {
    verdict = { healthy: false, detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
  if (!verdict.healthy && signal.aborted && !/in time|within/.test(verdict.detail)) verdict = { ...verdict, detail: `${verdict.detail} (timed out after ${spec.timeoutMs / 1000} s)` };
  return { name: spec.name, type: spec.type, healthy: verdict.healthy, latency_ms: Math.round(performance.now() - t0), detail: mask(verdict.detail) };
}

export async function runCheckup(specs: HeartbeatSpec[], mask?: (text: string) => string): Promise<Checkup> {
  const started = new Date();
  const results = await Promise.all(specs.map((s) => runCheck(s, mask)));
  return { healthy: results.every((r) => r.healthy), started_at: started.toISOString(), finished_at: new Date().toISOString(), results };
}
