// Where a refused run is recorded (RefusalPlace): the run's own state dir and callback; or, for
// a run refused for an invalid bootstrap.ini (78), what can be found without a config: the state
// dir from --state-dir or BOOTSTRAP_STATE_DIR, else the raw ini's [server] state_dir (else the
// default); the callback from --callback-url or the raw [callback] section. Only those
// keys are read, and only as far as they can be read safely: a regular file of at most 1 MiB,
// text, whose lines scan as the config's do (no duplicate key or section), a value that is there
// whole (not cut by a comment). Nothing else of the ini is used, logged or journaled: it may hold
// secrets. The server is named by the host name (the default of [server] name).

import { dirname, resolve } from 'node:path';
import { parse as parseIni } from 'ini';
import { maxDurationMs, parseDuration, type CallbackConfig, type Config } from '../config/config.js';
import { scanIni, type IniScan } from '../config/ini-scan.js';
import type { Logger } from '../log/log.js';
import type { RunContext } from './context.js';
import { readBoundedSync } from '../util/files.js';
import { os } from '../util/lazy.js';

/** Where a refusal is recorded: what the agent knew when the run was refused. */
export interface RefusalPlace {
  /** null: not known (an invalid bootstrap.ini, no --state-dir); `unknown` says why. */
  stateDir: string | null;
  unknown?: string | undefined;
  /** null: bootstrap.ini was refused (server, mode and products come from what can be read). */
  config: Config | null;
  server: string;
  phasesDir: string | null;
  commandLine: string;
  /** null: how to call back is not known (an ini too broken to tell): no callback, even to --callback-url. */
  callback: CallbackConfig | null;
  keepRuns: number;
  log: Logger;
}

/** The place of a run whose config was read: the run's own. */
export function placeOf(ctx: RunContext): RefusalPlace {
  const { config } = ctx;
  return { stateDir: ctx.stateDir, config, server: config.server.name, phasesDir: ctx.phasesDir, commandLine: ctx.commandLine, callback: config.callback, keepRuns: config.phases.keepRuns, log: ctx.log };
}

export interface InvalidConfigPaths {
  configFile: string;
  /** --state-dir and --phases-dir, if given (relative to `cwd`). */
  flags: { stateDir?: string | undefined; phasesDir?: string | undefined };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Where the state dir is when neither the flags, the environment nor the ini say. */
  defaultStateDir: string;
  commandLine: string;
  log: Logger;
}

interface RawIni {
  scan: IniScan;
  sections: Record<string, unknown>;
  dir: string;
}

/** The place of a refusal whose bootstrap.ini was refused (RefusalPlace with config null). */
export function placeOfInvalidConfig(o: InvalidConfigPaths): RefusalPlace {
  // The agent's precedence, without the ini: flag > environment.
  const given = (...paths: (string | undefined)[]) => {
    const path = paths.find((p) => p !== undefined && p !== '');
    return path === undefined ? undefined : resolve(o.cwd, path);
  };
  const phasesDir = given(o.flags.phasesDir, o.env['BOOTSTRAP_PHASES_DIR'], o.env['OS_REFRESH_CONFIG_BASE_DIR']) ?? null;
  const givenStateDir = given(o.flags.stateDir, o.env['BOOTSTRAP_STATE_DIR']);
  const raw = readRaw(o.configFile);
  const base = { config: null, server: os().hostname(), phasesDir, commandLine: o.commandLine, keepRuns: 50, log: o.log };
  const unknown = (why: string) => `the state dir is not known: ${why}; pass --state-dir or set BOOTSTRAP_STATE_DIR`;
  if (typeof raw === 'string') return { ...base, stateDir: givenStateDir ?? null, unknown: unknown(raw), callback: null };
  const callback = callbackOf(raw);
  if (givenStateDir) return { ...base, stateDir: givenStateDir, callback };
  const stateDir = rawValue(raw, 'server', 'state_dir');
  if (stateDir === null) return { ...base, stateDir: null, unknown: unknown(`[server] state_dir cannot be read from ${o.configFile}`), callback };
  return { ...base, stateDir: stateDir === undefined ? o.defaultStateDir : resolve(raw.dir, stateDir), callback };
}

/** The ini's sections and line scan, or why it cannot be read safely. */
function readRaw(file: string): RawIni | string {
  let text: string;
  try {
    text = readBoundedSync(file, { maxBytes: 1024 * 1024 }).toString('utf8');
  } catch (err) {
    return `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (text.includes('\0')) return `${file} is not text`;
  try {
    return { scan: scanIni(text, file), sections: parseIni(text) as Record<string, unknown>, dir: dirname(file) };
  } catch {
    return `${file} cannot be read safely (a section or key twice, or a forbidden name)`;
  }
}

/** A value as the config reads it: undefined when unset or empty, null when there but not usable whole. */
function rawValue(raw: RawIni, section: string, key: string): string | null | undefined {
  const sec = raw.sections[section];
  if (typeof sec !== 'object' || sec === null || !Object.hasOwn(sec, key)) return undefined;
  const id = `${section}\0${key}`;
  const value = (sec as Record<string, unknown>)[key];
  if (raw.scan.noValue.has(id) || raw.scan.cutValues.has(id) || typeof value !== 'string') return null;
  return value.trim() || undefined;
}

/**
 * [callback] as far as it can be used: null (no callback, even to --callback-url) when a key that
 * decides how it is sent (url, secret_file, ca_file) is there but unusable — never unsigned when
 * a key was meant.
 */
function callbackOf(raw: RawIni): CallbackConfig | null {
  const url = rawValue(raw, 'callback', 'url');
  const secretFile = rawValue(raw, 'callback', 'secret_file');
  const caFile = rawValue(raw, 'callback', 'ca_file');
  if (url === null || secretFile === null || caFile === null) return null;
  if (url !== undefined && !(/^https?:\/\//.test(url) && URL.canParse(url))) return null;
  const timeout = rawValue(raw, 'callback', 'timeout');
  const ms = timeout ? parseDuration(timeout) : null;
  return {
    url,
    secretFile: secretFile && resolve(raw.dir, secretFile),
    caFile: caFile && resolve(raw.dir, caFile),
    timeoutMs: ms !== null && ms > 0 && ms <= maxDurationMs ? ms : 10_000,
    maxAgeMs: undefined,
  };
}
