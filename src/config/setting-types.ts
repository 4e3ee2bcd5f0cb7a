// Setting types of `[product.NAME.settings]`: `TYPE[:DEFAULT]`. One parser per type, used both for
// the defaults in bootstrap.ini and for values given to `product.set`, so they cannot disagree.

import { isAbsolute } from 'node:path';

export type SettingValue = string | number | boolean;

export type SettingType =
  | { kind: 'string' | 'bool' | 'port' | 'path' | 'url' | 'secret' }
  | { kind: 'int'; min?: number | undefined; max?: number | undefined }
  | { kind: 'enum'; values: string[] };

/**
 * Parses `int`, `int(1..100)`, `int(0..)`, `int(..-1)`, `enum(a|b)` ... Returns null when it is
 * not a type, or the reason when it is one written wrong (bounds MIN > MAX).
 */
export function parseSettingType(text: string): SettingType | null | { error: string } {
  const t = text.trim();
  const enumMatch = /^enum\(([^()]*)\)$/.exec(t);
  if (enumMatch) {
    const values = (enumMatch[1] ?? '').split('|').map((v) => v.trim());
    if (values.length === 0 || values.some((v) => v === '')) return null;
    return { kind: 'enum', values };
  }
  const intMatch = /^int\(([^()]*)\)$/.exec(t);
  if (intMatch) return parseIntBounds(intMatch[1]!);
  switch (t) {
    case 'string':
    case 'int':
    case 'bool':
    case 'port':
    case 'path':
    case 'url':
    case 'secret':
      return { kind: t };
    default:
      return null;
  }
}

/** `MIN..MAX`, `MIN..` or `..MAX` (integers, negative allowed): at least one bound, MIN <= MAX. */
function parseIntBounds(text: string): SettingType | null | { error: string } {
  const m = /^\s*([-+]?\d+)?\s*\.\.\s*([-+]?\d+)?\s*$/.exec(text);
  if (!m || (m[1] === undefined && m[2] === undefined)) return null;
  const [min, max] = [m[1], m[2]].map((b) => (b === undefined ? undefined : Number(b)));
  if ([min, max].some((b) => b !== undefined && !Number.isSafeInteger(b))) return { error: `the bounds of int(${text}) must be integers of at most 15 digits` };
  if (min !== undefined && max !== undefined && min > max) return { error: `int(${text}): the lower bound ${min} is above the upper bound ${max}` };
  return { kind: 'int', min, max };
}

export function formatSettingType(type: SettingType): string {
  if (type.kind === 'enum') return `enum(${type.values.join('|')})`;
  if (type.kind === 'int' && (type.min !== undefined || type.max !== undefined)) return `int(${type.min ?? ''}..${type.max ?? ''})`;
  return type.kind;
}

/** The bounds of an int, in words: `from 1 to 100000`, `of at least 0`, `of at most -1`. */
function describeBounds(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `an integer from ${min} to ${max}`;
  if (min !== undefined) return `an integer of at least ${min}`;
  return max !== undefined ? `an integer of at most ${max}` : 'an integer';
}

const trueWords = new Set(['true', 'yes', 'on', '1']);
const falseWords = new Set(['false', 'no', 'off', '0']);

export type ParseResult = { ok: true; value: SettingValue } | { ok: false; expected: string };

/** Parses a text value as the type. `expected` says what was wanted, for the error message. */
export function parseSettingValue(type: SettingType, text: string): ParseResult {
  if (text.includes('\0')) return { ok: false, expected: 'a value without NUL bytes (steps get values in their environment)' };
  switch (type.kind) {
    case 'string':
    case 'secret':
      return { ok: true, value: text };
    case 'int': {
      const n = /^[-+]?\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
      const inBounds = (type.min === undefined || n >= type.min) && (type.max === undefined || n <= type.max);
      return Number.isSafeInteger(n) && inBounds ? { ok: true, value: n } : { ok: false, expected: describeBounds(type.min, type.max) };
    }
    case 'port': {
      const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
      return Number.isInteger(n) && n >= 1 && n <= 65535 ? { ok: true, value: n } : { ok: false, expected: 'a port number from 1 to 65535' };
    }
    case 'bool': {
      const w = text.trim().toLowerCase();
      if (trueWords.has(w)) return { ok: true, value: true };
      if (falseWords.has(w)) return { ok: true, value: false };
      return { ok: false, expected: 'a boolean (true/false, yes/no, on/off, 1/0)' };
    }
    case 'path':
      return isAbsolute(text) ? { ok: true, value: text } : { ok: false, expected: 'an absolute path' };
    case 'url':
      return isUrl(text) ? { ok: true, value: text } : { ok: false, expected: 'a URL such as https://host/path' };
    case 'enum':
      return type.values.includes(text) ? { ok: true, value: text } : { ok: false, expected: `one of ${type.values.join(', ')}` };
  }
}

function isUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return /^[a-z][a-z0-9+.-]*:$/.test(u.protocol) && (u.host !== '' || u.protocol === 'file:');
  } catch {
    return false;
  }
}

/** How a value reaches a step's environment. */
export function settingValueToEnv(value: SettingValue): string {
  return typeof value === 'string' ? value : String(value);
}

/**
 * A product's variable in a step's environment: `BOOTSTRAP_<PRODUCT>_<NAME>`, upper case, any
 * other character → `_`. NAME is a setting, or VERSION (the product's version).
 */
export function productEnvName(product: string, name: string): string {
  return `BOOTSTRAP_${product}_${name}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}
