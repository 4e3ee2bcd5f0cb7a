// The health gate after migration.d: the checkup repeated until healthy or health_timeout.

import { runCheckup } from '../heartbeat/checkup.js';
import type { Checkup } from '../heartbeat/types.js';
import type { Failure } from '../pipeline/step-result.js';
import { sleep } from '../util/process.js';
import type { RunContext } from './context.js';

/**
 * The health gate: after migration.d, the checkup is repeated until every check is healthy or
 * health_timeout passes; still unhealthy then fails the run with kind `heartbeat`.
 */
export async function healthGate(ctx: RunContext, signal: AbortSignal | undefined, keep: (c: Checkup) => void): Promise<Failure | null> {
  const config = ctx.config;
  const deadline = Date.now() + config.phases.healthTimeoutMs;
  const specs = [...config.heartbeats.values()];
  for (let attempt = 1; ; attempt++) {
    const checkup = await runCheckup(specs, ctx.env, ctx.log.masker);
    keep(checkup);
    if (checkup.healthy) {
      ctx.log.info(`health gate: all ${specs.length} checks healthy${attempt > 1 ? ` after ${attempt} checkups` : ''}`);
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
