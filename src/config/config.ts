// bootstrap.ini: parsed with `ini`, then validated and normalised in one place, before any
// command acts. Every error names the section and key (exit 78); a missing file is 66.

import { readBoundedSync } from '../util/files.js';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../version.js';
import { parse as parseIni } from 'ini';
import { ConfigError, ConfigMissingError, PermissionDeniedError } from '../errors.js';
import { describeChoices } from '../util/suggest.js';
import { formatSettingType, parseSettingType, parseSettingValue, productEnvName, type SettingType, type SettingValue } from './setting-types.js';
import { scanIni } from './ini-scan.js';
import { splitCommand } from './command-line.js';
import { parseHeartbeat, type HeartbeatSpec } from '../heartbeat/kinds.js';
import { redactUrl } from '../util/url.js';
import { isSection, maxDurationMs, parseDuration, Reader } from './reader.js';
import { os } from '../util/lazy.js';

/** Re-exported where the callback, the run and the CLI import them from (redactUrl lives in util/url, HeartbeatSpec in heartbeat/kinds). */
export { redactUrl };
/** Re-exported where the CLI and the refusal record import them from (they live with the reader). */
export { maxDurationMs, parseDuration };
export type { HeartbeatSpec };

export type BackoutPolicy = 'failed' | 'all' | 'none';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const logLevels: LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface ServerConfig {
  name: string;
  modes: string[];
  defaultMode: string;
  stateDir: string | undefined;
  phasesDir: string | undefined;
}

export interface PhasesConfig {
  scriptTimeoutMs: number;
  runTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
  backout: BackoutPolicy;
  /** Time between TERM and KILL when a step is stopped (contract: 10 s). */
  killGraceMs: number;
  /** Bound on each backout and error.d script. */
  cleanupTimeoutMs: number;
  healthGate: boolean;
  healthTimeoutMs: number;
  keepRuns: number;
  allowInsecure: boolean;
  /** A step with no #! line: refused, or run with /bin/sh, or with bash (what os-refresh-config's dib-run-parts does). */
  noShebang: 'refuse' | 'sh' | 'bash';
  /** os-refresh-config's lock file: held too while a run runs, when it exists ('' to ignore). */
  orcLockfile: string;
  /** What a run runs after it paused for a reboot a step asked for (argv, no shell). */
  rebootCommand: string[];
  /** Reboots one run may ask for; one more fails it (kind reboot). */
  maxReboots: number;
  /** What a step that ran and reported nothing (BOOTSTRAP_CHANGES empty) counts as. */
  unreported: 'unchanged' | 'changed';
}

export interface CallbackConfig {
  url: string | undefined;
  secretFile: string | undefined;
  caFile: string | undefined;
  timeoutMs: number;
  /** Undelivered callbacks older than this move to outbox/dead/ (undefined: never). */
  maxAgeMs: number | undefined;
}

export interface MetricsConfig {
  /** node_exporter's textfile collector dir (undefined: no metrics written). */
  textfileDir: string | undefined;
}

export interface LogConfig {
  file: string | undefined;
  level: LogLevel | undefined;
}

export interface SettingSpec {
  product: string;
  name: string;
  type: SettingType;
  default: SettingValue | undefined;
}

export interface ProductSpec {
  name: string;
  version: string | undefined;
  settings: Map<string, SettingSpec>;
}

export interface Config {
  file: string;
  dir: string;
  server: ServerConfig;
  phases: PhasesConfig;
  callback: CallbackConfig;
  log: LogConfig;
  metrics: MetricsConfig;
  products: Map<string, ProductSpec>;
  heartbeats: Map<string, HeartbeatSpec>;
}

const maxConfigBytes = 1024 * 1024;

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Reads and validates the config file. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    // Only a regular file, opened without blocking (a FIFO would hang), the size bound enforced
    // while reading (/dev/zero never ends).
    text = readBoundedSync(file, { maxBytes: maxConfigBytes }).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ConfigMissingError(file, join(packageRoot(), 'etc', 'bootstrap.ini'));
    if (code === 'EACCES' || code === 'EPERM') throw new PermissionDeniedError(`cannot read config file ${file}: permission denied`, 'run as root');
    if (code === 'ENOTREG') throw new ConfigError(`config file ${file} is not a regular file (a directory, FIFO or device)`, 'pass the path of bootstrap.ini');
    if (code === 'ERANGE') throw new ConfigError(`config file ${file} is more than the 1 MiB a bootstrap.ini may have`, 'is this the right file?');
    throw err;
  }
  return parseConfig(text, resolve(file));
}

/** Validates the text of a bootstrap.ini (`file` is for messages and relative paths). */
export function parseConfig(text: string, file: string): Config {
  if (text.includes('\0')) throw new ConfigError(`config file ${file} is not text (it has NUL bytes)`, 'is this the right file?');
  if (text.trim() === '') throw new ConfigError(`config file ${file} is empty`, 'it needs at least a [server] section; see etc/bootstrap.ini');
  const scan = scanIni(text, file);
  const raw = parseIni(text) as Record<string, unknown>;
  const dir = dirname(file);
  const r = new Reader(scan, dir);
  if (Object.keys(raw).length === 0) throw new ConfigError(`config file ${file} has no sections`, 'it needs at least a [server] section; see etc/bootstrap.ini');

  for (const key of Object.keys(raw)) {
    if (!['server', 'phases', 'callback', 'log', 'metrics', 'product', 'heartbeat'].includes(key)) {
      if (!isSection(raw[key])) throw new ConfigError(`${file}: key '${key}' is outside any section`, 'put it under a section such as [server]');
      throw new ConfigError(`${file}: unknown section [${key}]`, describeChoices(key, ['server', 'phases', 'callback', 'log', 'metrics', 'product.NAME', 'heartbeat.NAME']));
    }
  }

  const server = readServer(r, section(raw, 'server', file));
  const phases = readPhases(r, section(raw, 'phases', file));
  const callback = readCallback(r, section(raw, 'callback', file));
  const log = readLog(r, section(raw, 'log', file));
  const metrics = readMetrics(r, section(raw, 'metrics', file));
  const products = readProducts(r, section(raw, 'product', file), file);
  const heartbeats = readHeartbeats(r, section(raw, 'heartbeat', file), file, server.modes);
  return { file, dir, server, phases, callback, log, metrics, products, heartbeats };
}

function section(raw: Record<string, unknown>, name: string, file: string): Record<string, unknown> {
  if (!Object.hasOwn(raw, name)) return Object.create(null);
  const v = raw[name];
  if (!isSection(v)) throw new ConfigError(`${file}: '${name}' must be a section, not a key`);
  return v;
}

function readServer(r: Reader, sec: Record<string, unknown>): ServerConfig {
  r.keys(sec, 'server', ['name', 'modes', 'default_mode', 'state_dir', 'phases_dir']);
  const modes = r.list(sec, 'server', 'modes') ?? ['active', 'standby', 'maintenance'];
  if (modes.length === 0) throw new ConfigError('[server] modes: is empty', 'list the modes, e.g. modes = active, standby');
  for (const m of modes) {
    if (!namePattern.test(m)) throw new ConfigError(`[server] modes: '${m}' is not a valid mode name`, 'use letters, digits, - and _');
  }
  const defaultMode = r.str(sec, 'server', 'default_mode') || (modes.includes('standby') ? 'standby' : modes[0]!);
  if (!modes.includes(defaultMode)) {
    throw new ConfigError(`[server] default_mode: '${defaultMode}' is not among modes (${modes.join(', ')})`, 'add it to modes or pick one of them');
  }
  const name = r.str(sec, 'server', 'name') || os().hostname();
  return { name, modes, defaultMode, stateDir: r.path(sec, 'server', 'state_dir'), phasesDir: r.path(sec, 'server', 'phases_dir') };
}

function readPhases(r: Reader, sec: Record<string, unknown>): PhasesConfig {
  const n = 'phases';
  r.keys(sec, n, ['script_timeout', 'run_timeout', 'retries', 'retry_delay', 'backout', 'kill_grace', 'cleanup_timeout', 'health_gate', 'health_timeout', 'keep_runs', 'allow_insecure', 'no_shebang', 'orc_lockfile', 'reboot_command', 'max_reboots', 'unreported']);
  const backout = r.str(sec, n, 'backout') || 'failed';
  if (backout !== 'failed' && backout !== 'all' && backout !== 'none') {
    throw new ConfigError(`[phases] backout: '${backout}' is not one of failed, all, none`);
  }
  const noShebang = r.str(sec, n, 'no_shebang') || 'refuse';
  if (noShebang !== 'refuse' && noShebang !== 'sh' && noShebang !== 'bash') throw new ConfigError(`[phases] no_shebang: '${noShebang}' is not one of refuse, sh, bash`, 'bash runs them as os-refresh-config does');
  const unreported = r.str(sec, n, 'unreported') || 'unchanged';
  if (unreported !== 'unchanged' && unreported !== 'changed') throw new ConfigError(`[phases] unreported: '${unreported}' is not one of unchanged, changed`, 'changed: a step that reports nothing counts as changed (a migrated tree whose steps never report)');
  const orc = r.str(sec, n, 'orc_lockfile');
  return {
    scriptTimeoutMs: r.seconds(sec, n, 'script_timeout', 1800),
    runTimeoutMs: r.seconds(sec, n, 'run_timeout', 14400),
    retries: r.int(sec, n, 'retries', 0),
    retryDelayMs: r.seconds(sec, n, 'retry_delay', 5, true),
    backout,
    killGraceMs: r.seconds(sec, n, 'kill_grace', 10),
    cleanupTimeoutMs: r.seconds(sec, n, 'cleanup_timeout', 300),
    healthGate: r.bool(sec, n, 'health_gate', false),
    healthTimeoutMs: r.seconds(sec, n, 'health_timeout', 60),
    keepRuns: r.int(sec, n, 'keep_runs', 50, 1),
    allowInsecure: r.bool(sec, n, 'allow_insecure', false),
    noShebang,
    orcLockfile: orc === undefined ? '/var/run/os-refresh-config.lock' : orc === '' ? '' : resolve(r.dir, orc),
    rebootCommand: rebootCommand(r.str(sec, n, 'reboot_command')),
    maxReboots: r.int(sec, n, 'max_reboots', 3),
    unreported,
  };
}

function rebootCommand(value: string | undefined): string[] {
  const argv = splitCommand(value || 'systemctl reboot', 'phases');
  if (argv.length === 0) throw new ConfigError('[phases] reboot_command: empty', 'e.g. systemctl reboot');
  return argv;
}

function readCallback(r: Reader, sec: Record<string, unknown>): CallbackConfig {
  const n = 'callback';
  r.keys(sec, n, ['url', 'secret_file', 'ca_file', 'timeout', 'max_age']);
  const url = r.str(sec, n, 'url') || undefined;
  if (url !== undefined) {
    const parsed = parseSettingValue({ kind: 'url' }, url);
    if (!parsed.ok || !/^https?:/.test(url)) throw new ConfigError(`[callback] url: '${redactUrl(url)}' is not an http(s) URL`);
  }
  return { url, secretFile: r.path(sec, n, 'secret_file'), caFile: r.path(sec, n, 'ca_file'), timeoutMs: r.seconds(sec, n, 'timeout', 10), maxAgeMs: r.str(sec, n, 'max_age') ? r.seconds(sec, n, 'max_age', 0) : undefined };
}

function readMetrics(r: Reader, sec: Record<string, unknown>): MetricsConfig {
  r.keys(sec, 'metrics', ['textfile_dir']);
  return { textfileDir: r.path(sec, 'metrics', 'textfile_dir') };
}

function readLog(r: Reader, sec: Record<string, unknown>): LogConfig {
  r.keys(sec, 'log', ['file', 'level']);
  const level = r.str(sec, 'log', 'level') || undefined;
  if (level !== undefined && !logLevels.includes(level as LogLevel)) {
    throw new ConfigError(`[log] level: '${level}' is not one of ${logLevels.join(', ')}`);
  }
  return { file: r.path(sec, 'log', 'file'), level: level as LogLevel | undefined };
}

function readProducts(r: Reader, all: Record<string, unknown>, file: string): Map<string, ProductSpec> {
  const products = new Map<string, ProductSpec>();
  for (const name of Object.keys(all).sort()) {
    const sec = all[name];
    if (!isSection(sec)) throw new ConfigError(`${file}: 'product.${name}' must be a section [product.${name}]`);
    const where = `product.${name}`;
    if (!namePattern.test(name)) throw new ConfigError(`[${where}]: '${name}' is not a valid product name`, 'use letters, digits, - and _');
    r.keys(sec, where, ['version'], ['settings']);
    const settingsSec = Object.hasOwn(sec, 'settings') ? sec['settings'] : Object.create(null);
    if (!isSection(settingsSec)) throw new ConfigError(`[${where}] settings: must be a section [${where}.settings]`);
    const settings = new Map<string, SettingSpec>();
    for (const key of Object.keys(settingsSec).sort()) {
      settings.set(key, readSetting(r, name, key, settingsSec));
    }
    products.set(name, { name, version: r.str(sec, where, 'version') || undefined, settings });
  }
  checkEnvNames(products);
  return products;
}

/**
 * Each product's version and settings reach steps as `BOOTSTRAP_<PRODUCT>_<NAME>`: two that
 * give the same name would hide one another, so they are refused (78) naming both. A setting
 * named `version` is refused first: BOOTSTRAP_<PRODUCT>_VERSION is the product's version.
 */
function checkEnvNames(products: Map<string, ProductSpec>): void {
  const seen = new Map<string, string>();
  for (const p of products.values()) {
    const version = `[product.${p.name}] version`;
    const names: [string, string][] = [[productEnvName(p.name, 'version'), version], ...[...p.settings.keys()].map((k): [string, string] => [productEnvName(p.name, k), `[product.${p.name}.settings] ${k}`])];
    for (const [name, what] of names) {
      const other = seen.get(name);
      if (other === version) throw new ConfigError(`${what}: a setting may not be named version: steps get the product's version as ${name}`, 'rename the setting (e.g. app_version)');
      if (other) throw new ConfigError(`${what}: steps would get it as ${name}, as ${other}`, 'rename one of them');
      seen.set(name, what);
    }
  }
}

function readSetting(r: Reader, product: string, key: string, sec: Record<string, unknown>): SettingSpec {
  const where = `product.${product}.settings`;
  if (!namePattern.test(key)) throw new ConfigError(`[${where}] ${key}: not a valid setting name`, 'use letters, digits, - and _');
  if (isSection(sec[key])) throw new ConfigError(`[${where}.${key}]: settings have no subsections`);
  const spec = r.str(sec, where, key) ?? '';
  const m = /^([a-z]+(?:\([^()]*\))?)(?::(.*))?$/s.exec(spec);
  const type = m ? parseSettingType(m[1]!) : null;
  if (type && 'error' in type) throw new ConfigError(`[${where}] ${key}: ${type.error}`, 'write int(MIN..MAX), int(MIN..) or int(..MAX) with MIN <= MAX');
  if (!m || !type) {
    throw new ConfigError(`[${where}] ${key}: '${spec}' is not a setting type`, `write TYPE[:DEFAULT] with TYPE one of string, int, int(MIN..MAX), bool, port, path, url, enum(a|b), secret`);
  }
  let dflt: SettingValue | undefined;
  if (m[2] !== undefined) {
    const text = type.kind === 'path' && m[2] !== '' ? resolve(r.dir, m[2]) : m[2];
    const parsed = parseSettingValue(type, text);
    if (!parsed.ok) throw new ConfigError(`[${where}] ${key}: default '${type.kind === 'secret' ? '********' : m[2]}' is not ${parsed.expected}`, `fix the default of ${formatSettingType(type)}`);
    dflt = parsed.value;
  }
  return { product, name: key, type, default: dflt };
}

function readHeartbeats(r: Reader, all: Record<string, unknown>, file: string, modes: string[]): Map<string, HeartbeatSpec> {
  const beats = new Map<string, HeartbeatSpec>();
  for (const name of Object.keys(all).sort()) {
    const sec = all[name];
    const where = `heartbeat.${name}`;
    if (!isSection(sec)) throw new ConfigError(`${file}: '${where}' must be a section [${where}]`);
    if (!namePattern.test(name)) throw new ConfigError(`[${where}]: '${name}' is not a valid heartbeat name`);
    beats.set(name, parseHeartbeat(name, r.section(sec, where), modes));
  }
  return beats;
}
