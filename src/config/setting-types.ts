// Setting types of `[product.NAME.settings]`: `TYPE[:DEFAULT]`. One parser per type, used both for
// the defaults in bootstrap.ini and for values given to `product.set`, so they cannot disagree.

import { isAbsolute } from 'node:path';

export type SettingValue = string | number | boolean;

export type SettingType =
  | { kind: 'string' | 'int' | 'bool' | 'port' | 'path' | 'url' | 'secret' }
  | { kind: 'enum'; values: string[] };

/** Parses `int`, `enum(a|b)` ... Returns null when it is not a type. */
export function parseSettingType(text: string): SettingType | null {
  const t = text.trim();
  const enumMatch = /^enum\(([^()]*)\)$/.exec(t);
  if (enumMatch) {
    const values = (enumMatch[1] ?? '').split('|').map((v) => v.trim());
    if (values.length === 0 || values.some((v) => v === '')) return null;
    return { kind: 'enum', values };
  }
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

export function formatSettingType(type: SettingType): string {
  return type.kind === 'enum' ? `enum(${type.values.join('|')})` : type.kind;
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
      return Number.isSafeInteger(n) ? { ok: true, value: n } : { ok: false, expected: 'an integer' };
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
