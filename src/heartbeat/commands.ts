// The heartbeat commands over the agent's config and state: the checks named (`heartbeat.get`,
// changes nothing) and the checkup of the mode in force (`heartbeat.checkup`: kept as
// last_checkup, and with --report sent as a callback). Only agent.ts imports this file: the
// kinds and checkup.ts below it know nothing of state.json or callbacks.

import { readSecret } from '../callback/deliver.js';
import { checkupCallback } from '../callback/payload.js';
import type { Config, HeartbeatSpec } from '../config/config.js';
import { DataError } from '../errors.js';
import { effectiveProducts, enabledVersions } from '../products.js';
import { registerSecrets, trustedChecks, type RunContext } from '../run/context.js';
import { successOf } from '../state/state.js';
import { newRunId } from '../state/journal.js';
import { describeChoices } from '../util/suggest.js';
import { runCheckup, runCheckupOfMode } from './checkup.js';
import type { Checkup } from './types.js';

/** The checks named (all when none). Unknown names are refused with the names that exist. */
export function selectHeartbeats(config: Config, names: string[]): HeartbeatSpec[] {
  const beats = config.heartbeats;
  if (names.length === 0) return [...beats.values()];
  return names.map((n) => {
    const spec = beats.get(n);
    if (!spec) throw new DataError(`unknown heartbeat '${n}'`, describeChoices(n, [...beats.keys()]));
    return spec;
  });
}

/** `heartbeat.get`: the named checks (all when none) in parallel, whatever the mode; changes nothing. */
export async function heartbeatGet(ctx: Pick<RunContext, 'config' | 'env' | 'log' | 'store'>, names: string[]): Promise<Checkup> {
  const specs = trustedChecks(ctx, selectHeartbeats(ctx.config, names));
  await registerSecrets(ctx);
  return runCheckup(specs, ctx.env, ctx.log.masker);
}

/** `heartbeat.checkup`: every check of the mode in force in parallel; the result is kept as last_checkup, and sent with `report`. */
export async function heartbeatCheckup(ctx: Pick<RunContext, 'config' | 'env' | 'log' | 'store' | 'commandLine' | 'callbacks'>, options: { report?: boolean }): Promise<Checkup> {
  const config = ctx.config;
  if (options.report) readSecret(config.callback.secretFile); // refuse a bad key before checking anything
  const specs = trustedChecks(ctx, selectHeartbeats(config, []));
  await registerSecrets(ctx);
  // The checks of the mode in force only ([heartbeat.NAME] modes); the others are listed as not run.
  const inForce = (await ctx.store.read()).mode ?? config.server.defaultMode;
  const checkup = await runCheckupOfMode(specs, inForce, ctx.env, ctx.log.masker);
  const state = await ctx.store.update(ctx.commandLine, (s) => {
    s.last_checkup = checkup;
    return s;
  });
  if (options.report) {
    // A disabled server's checkups say so: the receiver sees why runs stopped.
    const body = { ...checkupCallback(newRunId(), config.server.name, state.mode ?? config.server.defaultMode, enabledVersions(effectiveProducts(config, state)), checkup, successOf(state)), disabled: state.disabled ?? null };
    if (!ctx.callbacks.target()) ctx.log.warn('--report: no [callback] url is configured; nothing was sent');
    await ctx.callbacks.report(body);
  }
  return checkup;
}
