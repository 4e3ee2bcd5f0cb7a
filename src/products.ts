// Products and their settings: what exists comes from bootstrap.ini, what was set from state.json.
// Only declared products and settings exist; anything else is refused with what exists.

import type { Config, ProductSpec, SettingSpec } from './config/config.js';
import { formatSettingType, parseSettingValue, type SettingValue } from './config/setting-types.js';
import { DataError, UsageError } from './errors.js';
import type { StateDoc } from './state/state.js';
import { describeChoices } from './util/suggest.js';

/**
 * The largest value a setting may have. Each reaches a step's environment as
 * `BOOTSTRAP_P_S=value`, and Linux refuses (E2BIG) any one such string over 128 KiB
 * (MAX_ARG_STRLEN): 120 KiB leaves room for the name. All settings together stay under 1 MiB,
 * well within the whole environment's limit (ARG_MAX, 2 MiB with the default stack).
 */
export const maxValueBytes = 120 * 1024;
export const maxSettingsBytes = 1024 * 1024;

export type SettingOrigin = 'set' | 'default' | 'unset';

export interface EffectiveSetting {
  product: string;
  name: string;
  type: string;
  secret: boolean;
  value: SettingValue | null;
  origin: SettingOrigin;
}

export interface EffectiveProduct {
  name: string;
  version: string | null;
  enabled: boolean;
  settings: EffectiveSetting[];
}

export function findProduct(config: Config, name: string): ProductSpec {
  const product = config.products.get(name);
  if (!product) throw new DataError(`unknown product '${name}'`, describeChoices(name, [...config.products.keys()]));
  return product;
}

export function findSetting(config: Config, product: string, name: string): SettingSpec {
  const spec = findProduct(config, product).settings.get(name);
  if (!spec) {
    const known = [...findProduct(config, product).settings.keys()];
    throw new DataError(`unknown setting '${product}.${name}'`, describeChoices(name, known).replace(/^known: /, `${product} has: `));
  }
  return spec;
}

/** Splits `PRODUCT.SETTING` (the setting part may not hold dots). */
export function parseSettingPath(text: string): { product: string; setting: string | undefined } {
  const parts = text.split('.');
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new UsageError(`'${text}' is not PRODUCT or PRODUCT.SETTING`, 'e.g. haproxy.maxconn');
  }
  return { product: parts[0]!, setting: parts[1] };
}

export interface Assignment {
  spec: SettingSpec;
  value: SettingValue;
}

/** `BOOTSTRAP_<PRODUCT>_<SETTING>`: upper case, any other character → `_`. */
export function settingEnvName(product: string, setting: string): string {
  return `BOOTSTRAP_${product}_${setting}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/** Validates every `PRODUCT.SETTING=VALUE` before anything is written; VALUE may contain `=`. */
export function parseAssignments(config: Config, pairs: string[]): Assignment[] {
  if (pairs.length === 0) throw new UsageError('product.set needs at least one PRODUCT.SETTING=VALUE');
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const path = pair.slice(0, eq);
    // Never echo what may be a value (`haproxy.stats_password:S`): only the name-like start.
    const shown = eq >= 0 ? `${path}=…` : `${/^[\w.-]*/.exec(pair)![0]}…`;
    if (eq < 0 || !/^[^.]+(\.[^.]+)?$/.test(path)) throw new UsageError(`'${shown}' is not PRODUCT.SETTING=VALUE`, 'e.g. haproxy.maxconn=8000');
    const { product, setting } = parseSettingPath(path);
    if (!setting) throw new UsageError(`'${pair}' names no setting`, `write ${product}.SETTING=VALUE`);
    const spec = findSetting(config, product, setting);
    const key = `${product}.${setting}`;
    if (seen.has(key)) throw new UsageError(`${key} is given twice`, 'give each setting once');
    seen.add(key);
    const text = pair.slice(eq + 1);
    if (spec.type.kind !== 'secret') checkValueSize(key, text, `${key} is refused`); // secrets never go to the environment
    const parsed = parseSettingValue(spec.type, text);
    if (!parsed.ok) {
      const shown = spec.type.kind === 'secret' ? '' : ` '${truncate(text)}'`;
      throw new DataError(`${key}: value${shown} is not ${parsed.expected}`, `${key} is of type ${formatSettingType(spec.type)}`);
    }
    return { spec, value: parsed.value };
  });
}

/** Validates `PRODUCT.SETTING` names for product.unset. */
export function parseSettingNames(config: Config, names: string[]): SettingSpec[] {
  if (names.length === 0) throw new UsageError('product.unset needs at least one PRODUCT.SETTING');
  return names.map((name) => {
    const { product, setting } = parseSettingPath(name);
    if (!setting) throw new UsageError(`'${name}' names no setting`, `write ${product}.SETTING`);
    return findSetting(config, product, setting);
  });
}

/** A value too large for a step's environment is refused (65) with the limit. */
function checkValueSize(key: string, value: string, what: string, hint = 'put large content in a file and set its path'): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxValueBytes) throw new DataError(`${what}: its value is ${bytes} bytes, more than the ${maxValueBytes} bytes a step's environment can take`, hint);
}

/** Settings together must fit a step's environment (65 with the total and the limit). */
export function checkSettingsBudget(products: EffectiveProduct[]): void {
  let total = 0;
  for (const p of products) for (const s of p.settings) if (s.value !== null && !s.secret) total += Buffer.byteLength(`${settingEnvName(p.name, s.name)}=${String(s.value)}`, 'utf8') + 1;
  if (total > maxSettingsBytes) throw new DataError(`the settings together take ${total} bytes of a step's environment, more than the ${maxSettingsBytes} allowed`, 'put large content in files and set their paths');
}

/**
 * A value read back from state.json, checked again against its declared type (a hand edit, or
 * a type changed in bootstrap.ini since): refused (65) with the way out.
 */
function checkStoredValue(spec: SettingSpec, value: unknown): void {
  const key = `${spec.product}.${spec.name}`;
  const hint = `bootstrap product.unset ${key}, or product.set it again`;
  if (typeof value === 'string' && spec.type.kind !== 'secret') checkValueSize(key, value, `state.json: ${key}`, hint);
  const parsed = parseSettingValue(spec.type, String(value));
  if (!parsed.ok || parsed.value !== value) {
    const shown = spec.type.kind === 'secret' ? '' : typeof value === 'string' ? ` "${truncate(value)}"` : ` ${truncate(String(value))}`;
    throw new DataError(`state.json: products.${spec.product}.settings.${spec.name} =${shown} is not ${parsed.ok ? `a ${formatSettingType(spec.type)} as stored` : parsed.expected}`, hint);
  }
}

export function effectiveProducts(config: Config, state: StateDoc): EffectiveProduct[] {
  const products = [...config.products.values()].map((product) => {
    const saved = Object.hasOwn(state.products, product.name) ? state.products[product.name] : undefined;
    const settings = [...product.settings.values()].map((spec): EffectiveSetting => {
      const set = saved && Object.hasOwn(saved.settings, spec.name) ? saved.settings[spec.name] : undefined;
      if (set !== undefined) checkStoredValue(spec, set);
      const value = set ?? spec.default ?? null;
      const origin: SettingOrigin = set !== undefined ? 'set' : spec.default !== undefined ? 'default' : 'unset';
      return { product: product.name, name: spec.name, type: formatSettingType(spec.type), secret: spec.type.kind === 'secret', value, origin };
    });
    return { name: product.name, version: saved?.version ?? product.version ?? null, enabled: saved?.enabled ?? true, settings };
  });
  checkSettingsBudget(products);
  return products;
}

/** Enabled product → version: what journals and callbacks report. */
export function enabledVersions(products: EffectiveProduct[]): Record<string, string | null> {
  return Object.fromEntries(products.filter((p) => p.enabled).map((p) => [p.name, p.version]));
}

/** Every secret value in force: these are masked in logs and output. */
export function secretValues(products: EffectiveProduct[]): string[] {
  return products.flatMap((p) => p.settings.filter((s) => s.secret && typeof s.value === 'string' && s.value !== '').map((s) => s.value as string));
}

function truncate(text: string): string {
  const oneLine = JSON.stringify(text).slice(1, -1);
  return oneLine.length > 60 ? `${oneLine.slice(0, 57)}...` : oneLine;
}
