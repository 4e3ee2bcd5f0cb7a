// Builds phase trees of real scripts in temp dirs.

import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sandbox, type Sandbox } from './cli.js';

/** A test body run in a fresh sandbox with an empty phases dir; `log` is a file steps may append to. */
export function withBox(ini: string, fn: (box: Sandbox, log: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const box = sandbox(ini);
    mkdirSync(box.phasesDir, { recursive: true });
    try {
      await fn(box, join(box.dir, 'steps.log'));
    } finally {
      box.cleanup();
    }
  };
}

/** Writes an executable script (a `#!/bin/sh` body unless it starts with `#!`). */
export function script(path: string, body: string, mode = 0o755): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body.startsWith('#!') ? body : `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

/** A step that appends `<phase>/<name>` to $LOG (set in the environment of the run). */
export function recordingStep(phasesDir: string, phase: string, name: string, extra = ''): string {
  return script(join(phasesDir, `${phase}.d`, name), `echo "${phase}/${name} $BOOTSTRAP_PHASE" >> "$LOG"\n${extra}`);
}

export function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

export function journals(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, 'runs')).filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}\.json$/.test(n));
  } catch {
    return [];
  }
}

/** An ini with the example's products and the given [phases] keys. */
export function iniWith(phases: Record<string, string | number> = {}, extra = ''): string {
  // A test agent never honours the machine's /var/run/os-refresh-config.lock (see isolatedIni).
  const lines = Object.entries({ orc_lockfile: "''", ...phases }).map(([k, v]) => `${k} = ${v}`);
  return `[server]
name = test-01
modes = active, standby, maintenance
default_mode = standby

[phases]
${lines.join('\n')}

[product.haproxy]
version = 2.6

[product.haproxy.settings]
maxconn = int:4096
bind_port = port:80
stats_password = secret

[product.deepfiler]
version = 1.4.0

[product.deepfiler.settings]
port = port:7070
log_level = enum(debug|info|warn|error):info
${extra}`;
}

/** Every file under `dir`, recursively, with its text (to show a string is nowhere). */
export function filesUnder(dir: string): [string, string][] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() ? [[p, readFileSync(p, 'latin1')] as [string, string]] : [];
  });
}
