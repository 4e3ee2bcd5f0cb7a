// The health gate after migration.d: the checkup repeated until healthy or health_timeout.

import { runCheckupOfMode } from '../heartbeat/checkup.js';
import type { Checkup } from '../heartbeat/types.js';
import type { Failure } from '../pipeline/step-result.js';
import { sleep } from '../util/process.js';
import type { RunContext } from './context.js';

/**
 * The health gate: after migration.d, the checkup of `mode` (the run's target mode: a check
 * whose `modes` leave it out is not run) is repeated until every check is healthy or
 * health_timeout passes; still unhealthy then fails the run with kind `heartbeat`.
 */
export async function healthGate(ctx: RunContext, signal: AbortSignal | undefined, keep: (c: Checkup) => void, mode: string): Promise<Failure | null> {
  const config = ctx.config;
  const deadline = Date.now() + config.phases.healthTimeoutMs;
  const specs = [...config.heartbeats.values()];
  for (let attempt = 1; ; attempt++) {
    const checkup = await runCheckupOfMode(specs, mode, ctx.env, ctx.log.masker);
    keep(checkup);
    if (checkup.healthy) {
      const notRun = checkup.not_run?.length ? `; not run in mode ${mode}: ${checkup.not_run.map((c) => c.name).join(', ')}` : '';
      ctx.log.info(`health gate: all ${checkup.results.length} checks healthy${attempt > 1 ? ` after ${attempt} checkups` : ''}${notRun}`);
      return null;
    }
    const bad = checkup.results.filter((r) => !r.healthy);
    const detail = bad.map((r) => `${r.name}: ${r.detail}`).join('; ');
    if (Date.now() + 1000 >= deadline || signal?.aborted) {
      return { phase: 'health', step: bad.map((r) => r.name).join(','), kind: 'heartbeat', exitCode: null, message: `unhealthy after ${(config.phases.healthTimeoutMs / 1000).toFixed(0)} s: ${detail}` };
    }
    ctx.log.info(`health gate: waiting (${detail})`);
    await sleep(1000);
  }
}
