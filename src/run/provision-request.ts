// What a provision leaves for the refresh (state.json's provision_requested): a server whose
// provision was asked for and never succeeded is provisioned again by the timer's refresh
// (performRefresh, here), as os-collect-config re-runs os-refresh-config until it succeeds.

import type { Config } from '../config/config.js';
import { effectiveProducts } from '../products.js';
import type { StateDoc } from '../state/state.js';
import type { RunContext } from './context.js';
import { performRun } from './perform.js';
import { validateRequest } from './request.js';
import type { RunOutcome, RunRequest } from './types.js';

/**
 * state.json's provision_requested, as a provision starts (its request valid, not a dry run), on
 * a server not provisioned yet: the refresh provisions it again until one succeeds. Best effort,
 * and it changes nothing of the run: a state.json the run will refuse is never rewritten, and a
 * write that fails (a full disk) is a warning; the run goes on to report its own outcome.
 */
export async function recordProvisionRequest(ctx: RunContext, request: RunRequest): Promise<void> {
  if (request.dryRun) return;
  validateRequest(ctx.config, request); // an unknown --products is refused, not retried for ever
  const state = await ctx.store.read().catch(() => null);
  if (!state || state.provisioned_at !== null || !storedValuesValid(ctx.config, state)) return;
  const products = request.products?.length ? [...request.products] : null;
  try {
    await ctx.store.update(ctx.commandLine, (s) => {
      s.provision_requested = { at: new Date().toISOString(), products };
    });
  } catch (err) {
    ctx.log.warn(`the provision asked for could not be recorded (server.refresh will not run it again): ${(err as Error).message}`);
  }
}

/** Whether state.json's settings pass the run's own check (else the run refuses it: 65). */
function storedValuesValid(config: Config, state: StateDoc): boolean {
  try {
    effectiveProducts(config, state);
    return true;
  } catch {
    return false;
  }
}

/** `server.refresh`: re-applies the configuration. On a server never provisioned: nothing (null). */
export async function performRefresh(ctx: RunContext, request: RunRequest): Promise<RunOutcome | null> {
  const state = await ctx.store.read();
  // A run waiting for its reboot (a provision too) is resumed by the timer's refresh.
  if (state.provisioned_at === null && !state.paused_run) {
    // A provision asked for and never succeeded is run again, as os-collect-config re-runs
    // os-refresh-config until it succeeds; never asked: nothing to do.
    const asked = state.provision_requested;
    if (!asked) return null;
    ctx.log.info(`server.refresh: the provision asked for at ${asked.at} never succeeded; provisioning again${asked.products ? ` (products ${asked.products.join(', ')})` : ''}`);
    return performRun(ctx, { ...request, action: 'provision', ...(asked.products ? { products: asked.products } : {}) });
  }
  return performRun(ctx, request);
}
