// Products and their settings: what exists comes from bootstrap.ini, what was set from state.json.
// Only declared products and settings exist; anything else is refused with what exists. Also
// what product.set and product.unset change in state.json (with their audit lines), and the
// name a setting has in a step's environment.

import type { Config, ProductSpec, SettingSpec } from './config/config.js';
import { formatSettingType, parseSettingValue, productEnvName, type SettingValue } from './config/setting-types.js';
import { DataError, UsageError } from './errors.js';
import type { StateDoc } from './state/state.js';
import { describeChoices } from './util/suggest.js';
import { compareVersions } from './versions.js';

/**
 * The largest value a setting may have. Each reaches a step's environment as
 * `BOOTSTRAP_P_S=value`, and Linux refuses (E2BIG) any one such string over 128 KiB
 * (MAX_ARG_STRLEN): 120 KiB leaves room for the name. All settings together stay under 1 MiB,
 * well within the whole environment's limit (ARG_MAX, 2 MiB with the default stack).
 */
export const maxValueBytes = 120 * 1024;
const maxSettingsBytes = 1024 * 1024;

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
  /** The version in force: state.json's (recorded by the last provision or upgrade), else bootstrap.ini's. */
  version: string | null;
  /** bootstrap.ini's `version`: differs from `version` until product.upgrade applies it. */
  declared_version: string | null;
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
  return productEnvName(product, setting);
}

/** `BOOTSTRAP_<PRODUCT>_VERSION`: the product's version (an upgrade's target), for every enabled product. */
export function versionEnvName(product: string): string {
  return productEnvName(product, 'version');
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
function checkSettingsBudget(products: EffectiveProduct[]): void {
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
    return { name: product.name, version: saved?.version ?? product.version ?? null, declared_version: product.version ?? null, enabled: saved?.enabled ?? true, settings };
  });
  checkSettingsBudget(products);
  return products;
}

/**
 * `bootstrap.ini declares 1.2, state has 1.1: …` when the ini's version is not the one in force
 * (editing the ini changes nothing by itself: an upgrade run applies it); null when they agree.
 */
export function describeVersionDrift(p: Pick<EffectiveProduct, 'name' | 'version' | 'declared_version'>): string | null {
  if (p.declared_version === null || p.version === null || p.declared_version === p.version) return null;
  const older = compareVersions(p.declared_version, p.version) < 0;
  return `bootstrap.ini declares ${p.declared_version}, state has ${p.version}: bootstrap product.upgrade ${p.name}${older ? ' --allow-downgrade' : ''} applies it`;
}

export interface SettingChange {
  product: string;
  setting: string;
  value: string | number | boolean | null;
  previous: string | number | boolean | null;
  /** False when the setting already had this value (set) or was not set (unset). */
  changed: boolean;
}

/**
 * product.set on `state` (validated assignments): each change, secrets as `********`; a secret's
 * previous value goes to `maskOld`. Throws (so the caller writes nothing) when the settings
 * together no longer fit a step's environment.
 */
export function setSettings(config: Config, state: StateDoc, assignments: Assignment[], maskOld: (previous: unknown) => void): SettingChange[] {
  const changes = assignments.map(({ spec, value }) => {
    const product = productState(state, spec.product);
    const previous = Object.hasOwn(product.settings, spec.name) ? product.settings[spec.name]! : (spec.default ?? null);
    const changed = !(Object.hasOwn(product.settings, spec.name) && product.settings[spec.name] === value);
    product.settings[spec.name] = value;
    const secret = spec.type.kind === 'secret';
    if (secret) maskOld(previous);
    return { product: spec.product, setting: spec.name, value: secret ? mask(value) : value, previous: secret ? mask(previous) : previous, changed };
  });
  checkSettingsBudget(effectiveProducts(config, state)); // all or none: a throw writes nothing
  return changes;
}

/** product.unset on `state`: the settings go back to their defaults. */
export function unsetSettings(state: StateDoc, specs: SettingSpec[], maskOld: (previous: unknown) => void): SettingChange[] {
  return specs.map((spec) => {
    const product = productState(state, spec.product);
    const previous = Object.hasOwn(product.settings, spec.name) ? product.settings[spec.name]! : null;
    const changed = Object.hasOwn(product.settings, spec.name);
    delete product.settings[spec.name];
    const secret = spec.type.kind === 'secret';
    if (secret) maskOld(previous);
    return { product: spec.product, setting: spec.name, value: secret ? mask(spec.default ?? null) : (spec.default ?? null), previous: secret ? mask(previous) : previous, changed };
  });
}

/** The audit trail of settings: one line per change, naming who (uid, and SUDO_USER). */
export function auditLines(verb: 'set' | 'unset', changes: SettingChange[], env: NodeJS.ProcessEnv): string[] {
  const uid = process.getuid?.() ?? 0;
  const sudo = env['SUDO_USER'] ? ` (sudo by ${env['SUDO_USER']})` : '';
  const show = (v: SettingChange['value']) => (v === null ? '(unset)' : JSON.stringify(v));
  return changes.filter((c) => c.changed).map((c) => `product.${verb} by uid ${uid}${sudo}: ${c.product}.${c.setting} ${show(c.previous)} → ${show(c.value)}`);
}

/** A product with its secrets shown as `********`. */
export function maskProduct(p: EffectiveProduct): EffectiveProduct {
  return { ...p, settings: p.settings.map((s) => (s.secret && s.value !== null ? { ...s, value: '********' } : s)) };
}

function productState(state: StateDoc, name: string) {
  if (!Object.hasOwn(state.products, name)) state.products[name] = { enabled: true, version: null, settings: {} };
  return state.products[name]!;
}

function mask<T>(value: T): T | string {
  return value === null ? value : '********';
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
