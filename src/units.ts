// `units.install`: writes the shipped systemd units with ExecStart pointing at this installed
// CLI (/usr/bin/bootstrap for a distribution package, the npm prefix's bin for npm -g), then
// reloads systemd when it is running.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError, stateFsError } from './errors.js';
import { writeFileAtomic } from './state/atomic.js';
import { packageRoot } from './version.js';

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

export async function installUnits(options: { dir?: string | undefined; bin: string; reload?: boolean; paths?: UnitPaths }): Promise<UnitsReport> {
  const source = join(packageRoot(), 'systemd');
  const dir = resolve(options.dir ?? '/etc/systemd/system');
  const bin = resolve(options.bin);
  // ExecStart= is parsed by systemd: a control character would end the line (and start a new
  // directive); spaces, quotes, % and $ are quoted and escaped.
  if (/[\x00-\x1f\x7f]/.test(bin)) throw new UsageError(`--bin: ${JSON.stringify(bin)} holds a control character (a newline?)`, 'pass the path of the bootstrap command');
  const written: string[] = [];
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw stateFsError(err, `create ${dir}`);
  }
  for (const name of readdirSync(source).filter((n) => /\.(service|timer)$/.test(n)).sort()) {
    const text = withPaths(readFileSync(join(source, name), 'utf8'), options.paths ?? {}).replaceAll('/usr/bin/bootstrap', systemdWord(bin));
    try {
      await writeFileAtomic(join(dir, name), text, 0o644);
    } catch (err) {
      throw stateFsError(err, `write ${join(dir, name)}`);
    }
    written.push(join(dir, name));
  }
  let reloaded = false;
  if (options.reload !== false && existsSync('/run/systemd/system')) {
    execFileSync('systemctl', ['daemon-reload'], { stdio: 'ignore' });
    reloaded = true;
  }
  return { dir, bin, written, reloaded };
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
  for (const f of flags) if (/[\x00-\x1f\x7f]/.test(f)) throw new UsageError(`${JSON.stringify(f)} holds a control character`, 'pass a plain path');
  let out = text;
  if (paths.config) out = out.replaceAll('ConditionPathExists=/etc/bootstrap/bootstrap.ini', `ConditionPathExists=${resolve(paths.config).replaceAll('%', '%%')}`);
  if (flags.length) out = out.replace(/^(ExecStart=\/usr\/bin\/bootstrap)(?= )/gm, `$1 ${flags.map(systemdWord).join(' ')}`);
  return out;
}
