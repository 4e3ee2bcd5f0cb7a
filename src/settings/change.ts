// product.set and product.unset: the change under the state lock, its audit trail, and (for a
// failed --apply) the putting back of what it changed (undo.ts). The Agent's settings methods
// are these, over the agent's config, store and log.

import type { Config } from '../config/config.js';
import type { Logger } from '../log/log.js';
import { auditLines, parseAssignments, parseSettingNames, setSettings, unsetSettings, type SettingChange } from '../products.js';
import type { StateDoc, StateStore } from '../state/state.js';
import { readKeys, restoreSettings, undoOf, type SettingUndo, type SettingsRestore } from './undo.js';

/** What a settings change needs of the agent. */
export interface SettingsContext {
  config: Config;
  store: StateStore;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Who changed state.json (StateStore.update's record). */
  commandLine: string;
}

/** A change, with what puts it back (`putBack`) when the run of --apply fails. */
export interface UndoableChange {
  changes: SettingChange[];
  undo: SettingUndo[];
}

/** `product.set K=V…`: every pair validated first, then all written or none. */
export function setUndoable(ctx: SettingsContext, pairs: string[]): Promise<UndoableChange> {
  const assignments = parseAssignments(ctx.config, pairs);
  ctx.log.addSecrets(assignments.filter((a) => a.spec.type.kind === 'secret').map((a) => String(a.value)));
  const keys = assignments.map((a) => ({ product: a.spec.product, setting: a.spec.name }));
  return changeSettings(ctx, 'set', keys, (state) => setSettings(ctx.config, state, assignments, (previous) => maskPrevious(ctx, previous)));
}

/** `product.unset K…`: back to the defaults. */
export function unsetUndoable(ctx: SettingsContext, names: string[]): Promise<UndoableChange> {
  const specs = parseSettingNames(ctx.config, names);
  const keys = specs.map((s) => ({ product: s.product, setting: s.name }));
  return changeSettings(ctx, 'unset', keys, (state) => unsetSettings(state, specs, (previous) => maskPrevious(ctx, previous)));
}

/** One settings change under the state lock, with each key's raw value before and after it. */
async function changeSettings(ctx: SettingsContext, verb: 'set' | 'unset', keys: { product: string; setting: string }[], change: (state: StateDoc) => SettingChange[]): Promise<UndoableChange> {
  let undo: SettingUndo[] = [];
  const changes = await ctx.store.update(ctx.commandLine, (state) => {
    const before = readKeys(state, keys);
    const made = change(state);
    undo = undoOf(made, before, readKeys(state, keys));
    return made;
  });
  return { changes: audit(ctx, verb, changes), undo };
}

/**
 * After the run of product.set/unset --apply failed (or never started): under the state lock,
 * each key the command changed goes back to its previous value, unless another command has set
 * it since (that value stands: it is reported kept). Audited as the change was.
 */
export async function putBack(ctx: Omit<SettingsContext, 'config'>, undo: SettingUndo[]): Promise<SettingsRestore> {
  const result = await ctx.store.update(ctx.commandLine, (state) => restoreSettings(state, undo));
  const back = new Set(result.restored.map((r) => `${r.product}.${r.setting}`));
  const undone = undo.filter((u) => back.has(`${u.product}.${u.setting}`)).map((u) => ({ ...u.change, value: u.change.previous, previous: u.change.value }));
  for (const line of auditLines('set', undone, ctx.env)) ctx.log.info(`${line} (put back: the run of --apply did not succeed)`);
  return result;
}

/**
 * A secret's value before product.set/unset changed it stays masked for the rest of the command:
 * the run of --apply (and whatever else this command runs) may still print the old value (a
 * step showing the config it replaces, a service's error naming the old password).
 */
function maskPrevious(ctx: SettingsContext, previous: unknown): void {
  if (previous !== null && previous !== undefined) ctx.log.addSecrets([String(previous)]);
}

/** The audit trail of settings: one info line per change, naming who (uid, and SUDO_USER). */
function audit(ctx: SettingsContext, verb: 'set' | 'unset', changes: SettingChange[]): SettingChange[] {
  for (const line of auditLines(verb, changes, ctx.env)) ctx.log.info(line);
  return changes;
}
