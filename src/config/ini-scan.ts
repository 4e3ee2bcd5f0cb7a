// A line scan of bootstrap.ini beside `ini`'s own parse, for what `ini` hides: it merges
// duplicate sections, keeps the last of duplicate keys, drops `__proto__`, and silently cuts an
// unquoted value at `;` or `#`. Line numbers make the errors findable.

import { ConfigError } from '../errors.js';

export interface CutValue {
  char: string;
  raw: string;
}

export interface IniScan {
  /** `section\0key` → where an unquoted value was cut by a comment character. */
  cutValues: Map<string, CutValue>;
  /** `section\0key` of lines with no `=` (ini makes them `true`). */
  noValue: Set<string>;
}

const forbiddenNames = new Set(['__proto__', 'constructor', 'prototype']);

export function scanIni(text: string, file: string): IniScan {
  const cutValues = new Map<string, CutValue>();
  const noValue = new Set<string>();
  const sectionLines = new Map<string, number>();
  let keyLines = new Map<string, number>();
  let section = '';
  const lines = text.split(/\r\n|\r|\n/);
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (/^\s*([;#]|$)/.test(line)) return;
    const header = /^\[([^\]]*)\]\s*$/.exec(line);
    if (header) {
      section = unquote(header[1]!.trim()); // `ini` unquotes section names too
      checkName(section.split('.'), `${file}:${lineNo}: section [${section}]`);
      const first = sectionLines.get(section);
      if (first !== undefined) throw new ConfigError(`${file}:${lineNo}: section [${section}] appears twice (lines ${first} and ${lineNo})`, 'merge the two sections');
      sectionLines.set(section, lineNo);
      keyLines = new Map();
      return;
    }
    const kv = /^([^=]+)(=(.*))?$/.exec(line);
    if (!kv) return;
    // `ini` unquotes keys: `"maxconn" = 1` is maxconn, `"__proto__"` is __proto__.
    const key = unquote(kv[1]!.trim());
    const where = section ? `[${section}] ${key}` : key;
    checkName([key], `${file}:${lineNo}: ${where}`);
    if (key.endsWith('[]')) throw new ConfigError(`${file}:${lineNo}: ${where}: arrays are not supported`, 'write one comma-separated value');
    const first = keyLines.get(key);
    if (first !== undefined) throw new ConfigError(`${file}:${lineNo}: ${where} is set twice (lines ${first} and ${lineNo})`, 'keep one of them');
    keyLines.set(key, lineNo);
    const id = `${section}\0${key}`;
    if (kv[2] === undefined) {
      noValue.add(id);
      return;
    }
    const cut = findCut(kv[3] ?? '');
    if (cut) cutValues.set(id, cut);
  });
  return { cutValues, noValue };
}

function checkName(parts: string[], where: string): void {
  for (const part of parts) {
    if (forbiddenNames.has(part.trim())) throw new ConfigError(`${where}: '${part.trim()}' is not allowed as a name`, 'rename it');
  }
}

/**
 * An unquoted value holding `;` or `#` right after another character (`stats;csv`, `a#frag`) was
 * almost surely not meant as a comment. ` ; comment` (after white space) is a comment.
 */
function findCut(rawValue: string): CutValue | null {
  const v = rawValue.trim();
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) return null;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (c !== ';' && c !== '#') continue;
    if (i === 0 || /\s/.test(v[i - 1]!)) return null;
    const rest = /\s[;#]/.exec(v.slice(i));
    return { char: c, raw: rest ? v.slice(0, i + rest.index) : v };
  }
  return null;
}

function unquote(name: string): string {
  if (name.length >= 2 && ((name.startsWith('"') && name.endsWith('"')) || (name.startsWith("'") && name.endsWith("'")))) {
    try {
      return name.startsWith('"') ? String(JSON.parse(name)) : name.slice(1, -1);
    } catch {
      return name.slice(1, -1);
    }
  }
  return name;
}
