// product.get: the effective settings of one product, one setting or all, secrets masked unless
// revealed; and who may reveal them (root, or the owner of the state dir).

import { statSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { PermissionDeniedError } from '../errors.js';
import { findProduct, findSetting, maskProduct, parseSettingPath, type EffectiveProduct, type EffectiveSetting } from '../products.js';

/** The products (or the one setting) `path` names; all when none. Unknown names are refused with the names that exist. */
export function selectSettings(config: Config, products: EffectiveProduct[], options: { path?: string | undefined; reveal?: boolean }): { products: EffectiveProduct[]; setting?: EffectiveSetting } {
  const shown = options.reveal ? products : products.map(maskProduct);
  if (!options.path) return { products: shown };
  const { product, setting } = parseSettingPath(options.path);
  findProduct(config, product);
  const selected = shown.filter((p) => p.name === product);
  if (!setting) return { products: selected };
  findSetting(config, product, setting);
  return { products: selected, setting: selected[0]!.settings.find((s) => s.name === setting)! };
}

/** Secrets are shown only to root or the owner of the state dir. */
export function assertMayReveal(stateDir: string): void {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return;
  let owner: number | null = null;
  try {
    owner = statSync(stateDir).uid;
  } catch {
    // no state dir yet: only ini defaults, still secrets
  }
  if (owner !== uid) throw new PermissionDeniedError('--reveal shows secrets only to root or the owner of the state dir', 'run as root');
}
