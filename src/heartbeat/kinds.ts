// The one list of heartbeat kinds. Everything that names the kinds derives from it: the
// HeartbeatType and HeartbeatSpec types, the hint of an unknown `type` in bootstrap.ini, and the
// dispatch of a check; test/unit/heartbeat/kinds.test.ts ties the callback JSON Schema's enum
// to it.

import { ConfigError } from '../errors.js';
import { exec } from './exec.js';
import { haproxy } from './haproxy.js';
import { http } from './http.js';
import { tcp } from './tcp.js';
import type { CheckContext, CheckVerdict, HeartbeatKind, SectionReader, SpecBase } from './types.js';

/** In the order the hint names them. */
const kinds = { haproxy, http, tcp, exec };

export type HeartbeatType = keyof typeof kinds;
type SpecOf<K> = K extends HeartbeatKind<infer S> ? S : never;
/** One check of bootstrap.ini, told apart by `type`. */
export type HeartbeatSpec = { [T in HeartbeatType]: SpecOf<(typeof kinds)[T]> }[HeartbeatType];

// Each kind's spec says its own name in `type` (a kind filed under another name fails here).
const named: { [T in HeartbeatType]: HeartbeatKind<SpecBase & { type: T }> } = kinds;
void named;

export const heartbeatTypes = Object.keys(kinds) as HeartbeatType[];

function isHeartbeatType(type: string): type is HeartbeatType {
  return Object.hasOwn(kinds, type);
}

/**
 * Reads one [heartbeat.NAME] section: its type, timeout and modes (each one of `serverModes`),
 * then the rest as its kind reads it.
 */
export function parseHeartbeat(name: string, r: SectionReader, serverModes: string[]): HeartbeatSpec {
  const type = r.str('type');
  const timeoutMs = r.seconds('timeout', 2);
  if (type === undefined || !isHeartbeatType(type)) {
    throw new ConfigError(`[${r.where}] type: ${type === undefined ? 'missing' : `'${type}' is not a heartbeat type`}`, `one of ${heartbeatTypes.join(', ')}`);
  }
  const kind: HeartbeatKind<HeartbeatSpec> = kinds[type];
  r.keys(['type', 'timeout', 'modes', ...kind.keys]);
  return kind.parse(r, { name, timeoutMs, modes: readModes(r, serverModes) });
}

/** `modes = a, b`: the modes the check belongs to; absent: every mode. */
function readModes(r: SectionReader, serverModes: string[]): string[] | null {
  const modes = r.list('modes');
  if (modes === undefined) return null;
  if (modes.length === 0) throw new ConfigError(`[${r.where}] modes: is empty`, `leave it out (every mode), or list some of ${serverModes.join(', ')}`);
  const unknown = modes.find((m) => !serverModes.includes(m));
  if (unknown !== undefined) throw new ConfigError(`[${r.where}] modes: '${unknown}' is not one of [server] modes`, `modes are: ${serverModes.join(', ')}`);
  return [...new Set(modes)];
}

/** Checks one spec with its kind. */
export function checkHeartbeat(spec: HeartbeatSpec, ctx: CheckContext): Promise<CheckVerdict> {
  const kind: HeartbeatKind<HeartbeatSpec> = kinds[spec.type]; // the kind spec.type names: the one whose spec it is
  return kind.check(spec, ctx);
}
