// The reader of bootstrap.ini's keys: one typed accessor per kind of value (text, whole number,
// duration, bool, path, list), each refusing what it cannot read with the section and key named
// (exit 78), and what the `ini` scan found it hid (a key with no value, a value cut at ; or #).
// config.ts reads every section through it; heartbeat kinds read theirs through `section()`.

import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { SectionReader } from '../heartbeat/types.js';
import { describeChoices } from '../util/suggest.js';
import type { IniScan } from './ini-scan.js';
import { parseSettingValue } from './setting-types.js';

/** Timers hold at most 2^31-1 ms (a larger delay fires at once): the longest duration is 24 days. */
export const maxDurationMs = 24 * 24 * 3600 * 1000;
const units: Record<string, number> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `1.5`, `30s`, `30m`, `4h`, `2d` → ms; null when it is not a duration (negative included). */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec(text.trim());
  if (!m) return null;
  const ms = Math.round(Number(m[1]) * units[m[2]!]!);
  return Number.isFinite(ms) ? ms : null;
}

/** A `[section]` as `ini` gives it: an object (a key's value is a string, boolean or null). */
export function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads typed keys of one section, refusing unknown keys. */
export class Reader {
  constructor(
    readonly scan: IniScan,
    readonly dir: string,
  ) {}

  keys(sec: Record<string, unknown>, name: string, known: string[], subsections: string[] = []): void {
    for (const key of Object.keys(sec)) {
      if (subsections.includes(key) && isSection(sec[key])) continue;
      if (!known.includes(key)) throw new ConfigError(`[${name}] ${key}: unknown key`, describeChoices(key, known));
    }
  }

  str(sec: Record<string, unknown>, name: string, key: string): string | undefined {
    if (!Object.hasOwn(sec, key)) return undefined;
    const id = `${name}\0${key}`;
    if (this.scan.noValue.has(id)) throw new ConfigError(`[${name}] ${key}: has no value`, `write ${key} = VALUE`);
    let v = sec[key];
    // ini turns the words true, false and null into JSON values; we want the text.
    if (typeof v === 'boolean' || v === null) v = String(v);
    if (typeof v !== 'string') throw new ConfigError(`[${name}] ${key}: must be a single value`);
    const cut = this.scan.cutValues.get(id);
    if (cut) {
      throw new ConfigError(`[${name}] ${key}: the value was cut at '${cut.char}' (an unquoted ; or # starts a comment)`, `quote the whole value, ${key} = "${cut.raw}", with no comment after it, or escape it as \\${cut.char}`);
    }
    return v.trim();
  }

  int(sec: Record<string, unknown>, name: string, key: string, dflt: number, min = 0): number {
    const v = this.str(sec, name, key);
    if (v === undefined || v === '') return dflt;
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`[${name}] ${key}: '${v}' is not a whole number${min > 0 ? ` of at least ${min}` : ''}`);
    return n;
  }

  /** A duration: seconds, or a number with a unit (`90`, `1.5`, `30s`, `30m`, `4h`, `2d`). */
  seconds(sec: Record<string, unknown>, name: string, key: string, dfltSeconds: number, allowZero = false): number {
    const v = this.str(sec, name, key);
    if (v === undefined || v === '') return dfltSeconds * 1000;
    const ms = parseDuration(v);
    if (ms === null || (ms === 0 && !allowZero)) throw new ConfigError(`[${name}] ${key}: '${v}' is not a ${allowZero ? '' : 'positive '}duration`, 'write seconds, or a number with a unit: 90, 30s, 30m, 4h, 2d');
    if (ms > maxDurationMs) throw new ConfigError(`[${name}] ${key}: '${v}' is longer than the longest duration bootstrap can wait (24 days)`, 'use a shorter duration');
    return ms;
  }

  bool(sec: Record<string, unknown>, name: string, key: string, dflt: boolean): boolean {
    const v = this.str(sec, name, key);
    if (v === undefined || v === '') return dflt;
    const parsed = parseSettingValue({ kind: 'bool' }, v);
    if (!parsed.ok) throw new ConfigError(`[${name}] ${key}: '${v}' is not ${parsed.expected}`);
    return parsed.value as boolean;
  }

  path(sec: Record<string, unknown>, name: string, key: string): string | undefined {
    const v = this.str(sec, name, key);
    return v ? resolve(this.dir, v) : undefined;
  }

  list(sec: Record<string, unknown>, name: string, key: string): string[] | undefined {
    const v = this.str(sec, name, key);
    if (v === undefined) return undefined;
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /** This reader, bound to one section (what a heartbeat kind reads its section with). */
  section(sec: Record<string, unknown>, name: string): SectionReader {
    return {
      where: name,
      keys: (known) => this.keys(sec, name, known),
      str: (key) => this.str(sec, name, key),
      int: (key, dflt, min) => this.int(sec, name, key, dflt, min),
      seconds: (key, dflt) => this.seconds(sec, name, key, dflt),
      path: (key) => this.path(sec, name, key),
      list: (key) => this.list(sec, name, key),
    };
  }
}
