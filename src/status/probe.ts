// The inputs of `server.status --check`, read for the pure check (check.ts): state.json, the
// outbox counts and a probe of the run lock (never taken: a monitor calls this every minute,
// during runs too).

import { Outbox } from '../callback/outbox.js';
import type { RunContext } from '../run/context.js';
import { checkStatus, type StatusCheck } from './check.js';

export async function probeStatus(ctx: Pick<RunContext, 'store' | 'stateDir' | 'runLock'>, options: { maxAgeMs?: number | undefined; now?: number } = {}): Promise<StatusCheck> {
  const state = await ctx.store.read();
  const callbacks = await new Outbox(ctx.stateDir).counts();
  const probe = await ctx.runLock.probe();
  const runningSince = probe.state === 'held' ? (probe.owner?.startedAt ?? null) : null;
  return checkStatus({ state, callbacks, runningSince, now: options.now ?? Date.now(), maxAgeMs: options.maxAgeMs });
}
