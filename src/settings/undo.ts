// product.set/unset --apply is one change: when its run does not succeed, what the command
// changed is put back. Here, what it takes to put it back (the raw value of each key before and
// after, taken inside the same state update as the change) and the putting back itself, which
// runs inside StateStore.update: a key goes back only while it still holds this command's value,
// so a product.set made by someone else in between is never clobbered.

import type { SettingValue } from '../config/setting-types.js';
import type { SettingChange } from '../products.js';
import type { StateDoc } from '../state/state.js';

/** One key a command changed: its raw value before and after (undefined: not set, the default). */
export interface SettingUndo {
  product: string;
  setting: string;
  before: SettingValue | undefined;
  after: SettingValue | undefined;
  /** The change as shown (secrets as `********`): what the restore reports. */
  change: SettingChange;
}

/** What became of each key when a failed --apply put its settings back. */
export interface SettingsRestore {
  /** Put back to its previous value (`value`: as shown, secrets masked), set or (not set) the default. */
  restored: { product: string; setting: string; value: SettingChange['previous']; origin: 'set' | 'default' | 'unset' }[];
  /** Left as it is: `keep-on-failure`, or `changed since` (another command set it meanwhile). */
  kept: { product: string; setting: string; value: SettingChange['value']; why: 'keep-on-failure' | 'changed since' }[];
}

/** The raw value of each key named, for snapshots taken before and after a change. */
export function readKeys(state: StateDoc, keys: { product: string; setting: string }[]): (SettingValue | undefined)[] {
  return keys.map((k) => {
    const settings = state.products[k.product]?.settings;
    return settings && Object.hasOwn(settings, k.setting) ? settings[k.setting] : undefined;
  });
}

/** The undo of the keys a command changed (unchanged ones need none). */
export function undoOf(changes: SettingChange[], before: (SettingValue | undefined)[], after: (SettingValue | undefined)[]): SettingUndo[] {
  return changes.flatMap((change, i) => (change.changed ? [{ product: change.product, setting: change.setting, before: before[i], after: after[i], change }] : []));
}

/** Puts back (in `state`) each key that still holds the value the command gave it. */
export function restoreSettings(state: StateDoc, undo: SettingUndo[]): SettingsRestore {
  const result: SettingsRestore = { restored: [], kept: [] };
  const now = readKeys(state, undo);
  undo.forEach((u, i) => {
    if (now[i] !== u.after) {
      result.kept.push({ product: u.product, setting: u.setting, value: u.change.value, why: 'changed since' });
      return;
    }
    const settings = state.products[u.product]?.settings;
    if (settings && u.before === undefined) delete settings[u.setting];
    else if (settings) settings[u.setting] = u.before!;
    else if (u.before !== undefined) state.products[u.product] = { enabled: true, version: null, settings: { [u.setting]: u.before } };
    const origin = u.before !== undefined ? 'set' : u.change.previous === null ? 'unset' : 'default';
    result.restored.push({ product: u.product, setting: u.setting, value: u.change.previous, origin });
  });
  return result;
}

/** `--keep-on-failure`: nothing is put back; each changed key is reported kept. */
export function keptOnFailure(undo: SettingUndo[]): SettingsRestore {
  return { restored: [], kept: undo.map((u) => ({ product: u.product, setting: u.setting, value: u.change.value, why: 'keep-on-failure' as const })) };
}
