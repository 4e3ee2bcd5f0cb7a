// `units.install`: writes the shipped systemd units with ExecStart pointing at this installed
// CLI (/usr/bin/bootstrap for a distribution package, the npm prefix's bin for npm -g) and
// TimeoutStartSec derived from the ini's run_timeout, then reloads systemd when it is running.
// `units.uninstall` (units-uninstall.ts) removes what it wrote, found by the marker line.

import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError, stateFsError } from './errors.js';
import { writeFileAtomic } from './state/atomic.js';
import { hasControls } from './util/text.js';
import { packageRoot } from './version.js';
import { childProcess } from './util/lazy.js';

export interface UnitsReport {
  dir: string;
  bin: string;
  written: string[];
  reloaded: boolean;
}

export interface UnitPaths {
  /** Given to units.install (flag or environment): the units carry them, so systemd's runs use them. */
  config?: string | undefined;
  stateDir?: string | undefined;
  phasesDir?: string | undefined;
}

/** The first line of every unit units.install writes: units.uninstall removes only files that start with it. */
export const unitMarker = '# Written by `bootstrap units.install`; `bootstrap units.uninstall` removes it (and leaves units without this line).';

export const defaultUnitDir = '/etc/systemd/system';

/** The units bootstrap ships (systemd/ of the package), by file name. */
export function shippedUnits(): string[] {
  return readdirSync(join(packageRoot(), 'systemd')).filter((n) => /\.(service|timer)$/.test(n)).sort();
}

/** The units whose service is a whole run (their TimeoutStartSec follows run_timeout). */
const runUnits = ['bootstrap-refresh.service', 'bootstrap-resume.service'];

/**
 * The services that run a whole run get [phases] run_timeout plus 15 min (the 5 min --wait for
 * another run, and 10 for bootstrap's own timeout to stop the step, run error.d and report),
 * so that bootstrap's timeout fires first, never systemd's.
 */
export function startTimeout(runTimeoutMs: number): string {
  let s = Math.ceil(runTimeoutMs / 1000) + 15 * 60;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]] as const) {
    if (s >= size) parts.push(`${Math.floor(s / size)}${unit}`);
    s %= size;
  }
  return parts.join(' ');
}

export async function installUnits(options: { dir?: string | undefined; bin: string; reload?: boolean; paths?: UnitPaths; runTimeoutMs: number }): Promise<UnitsReport> {
  const source = join(packageRoot(), 'systemd');
  const dir = resolve(options.dir ?? defaultUnitDir);
  const bin = resolve(options.bin);
  // ExecStart= is parsed by systemd: a control character would end the line (and start a new
  // directive); spaces, quotes, % and $ are quoted and escaped.
  if (hasControls(bin)) throw new UsageError(`--bin: ${JSON.stringify(bin)} holds a control character (a newline?)`, 'pass the path of the bootstrap command');
  const written: string[] = [];
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw stateFsError(err, `create ${dir}`);
  }
  for (const name of shippedUnits()) {
    let shipped = readFileSync(join(source, name), 'utf8');
    if (runUnits.includes(name)) shipped = shipped.replace(/^TimeoutStartSec=.*$/m, `TimeoutStartSec=${startTimeout(options.runTimeoutMs)}`);
    const text = `${unitMarker}\n${withPaths(shipped, options.paths ?? {}).replaceAll('/usr/bin/bootstrap', systemdWord(bin))}`;
    try {
      await writeFileAtomic(join(dir, name), text, 0o644);
    } catch (err) {
      throw stateFsError(err, `write ${join(dir, name)}`);
    }
    written.push(join(dir, name));
  }
  return { dir, bin, written, reloaded: reloadSystemd(options.reload) };
}

/** systemctl daemon-reload, when systemd runs (and it was not declined): whether it ran. */
export function reloadSystemd(reload: boolean | undefined): boolean {
  if (reload === false || !existsSync('/run/systemd/system')) return false;
  childProcess().execFileSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
  return true;
}

/** One word of a systemd command line: quoted when it needs to be, `%` and `$` escaped. */
function systemdWord(word: string): string {
  const escaped = word.replaceAll('%', '%%').replaceAll('$', '$$$$');
  if (!/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The shipped units name the default paths. Paths given to units.install go into every
 * ExecStart (after the program) and ConditionPathExists, or systemd would skip or misdirect
 * every timer run in silence.
 */
function withPaths(text: string, paths: UnitPaths): string {
  const flags = [
    ...(paths.config ? ['--config', resolve(paths.config)] : []),
    ...(paths.stateDir ? ['--state-dir', resolve(paths.stateDir)] : []),
    ...(paths.phasesDir ? ['--phases-dir', resolve(paths.phasesDir)] : []),
  ];
  for (const f of flags) if (hasControls(f)) throw new UsageError(`${JSON.stringify(f)} holds a control character`, 'pass a plain path');
  let out = text;
  if (paths.config) out = out.replaceAll('ConditionPathExists=/etc/bootstrap/bootstrap.ini', `ConditionPathExists=${resolve(paths.config).replaceAll('%', '%%')}`);
  if (flags.length) out = out.replace(/^(ExecStart=\/usr\/bin\/bootstrap)(?= )/gm, `$1 ${flags.map(systemdWord).join(' ')}`);
  return out;
}

export interface UninstallReport {
  dir: string;
  removed: string[];
  /** The links `systemctl enable` made to them (DIR/*.wants/NAME): what disabling removes. */
  unlinked: string[];
  /** Units of ours by name that units.install did not write (no marker line): left as they are. */
  left: { path: string; reason: string }[];
  reloaded: boolean;
}

/**
 * `units.uninstall`: disables and removes the units units.install wrote (those that start with
 * its marker line), then reloads systemd. Anything else of the same name is left, and named.
 * Running units are not stopped: systemd keeps them until they are stopped or the host reboots.
 */
export function uninstallUnits(options: { dir?: string | undefined; reload?: boolean }): UninstallReport {
  const dir = resolve(options.dir ?? defaultUnitDir);
  const ours: string[] = [];
  const left: UninstallReport['left'] = [];
  for (const name of shippedUnits()) {
    const path = join(dir, name);
    const reason = notOurs(path);
    if (reason === 'absent') continue;
    if (reason) left.push({ path, reason });
    else ours.push(name);
  }
  const unlinked = enableLinks(dir, ours);
  for (const path of [...unlinked, ...ours.map((n) => join(dir, n))]) {
    try {
      unlinkSync(path);
    } catch (err) {
      throw stateFsError(err, `remove ${path}`);
    }
  }
  return { dir, removed: ours.map((n) => join(dir, n)), unlinked, left, reloaded: reloadSystemd(options.reload) };
}

/** Why the unit at `path` is not one units.install wrote ('absent': there is none), or null. */
function notOurs(path: string): string | null {
  try {
    if (!lstatSync(path).isFile()) return 'not a regular file';
    return readFileSync(path, 'utf8').split('\n', 1)[0] === unitMarker ? null : 'not written by units.install (no marker line): left as it is';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw stateFsError(err, `read ${path}`);
  }
}

/** The symlinks `systemctl enable` made to these units: DIR/TARGET.wants/NAME (or .requires) pointing at DIR/NAME. */
function enableLinks(dir: string, names: string[]): string[] {
  const links: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir).filter((e) => /\.(wants|requires)$/.test(e));
  } catch (err) {
    throw stateFsError(err, `list ${dir}`);
  }
  for (const entry of entries) {
    for (const name of names) {
      const link = join(dir, entry, name);
      try {
        if (lstatSync(link).isSymbolicLink() && resolve(dirname(link), readlinkSync(link)) === join(dir, name)) links.push(link);
      } catch {
        // no such link: not enabled there
      }
    }
  }
  return links;
}
