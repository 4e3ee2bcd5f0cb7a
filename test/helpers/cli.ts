// Runs the real CLI (bin/bootstrap, the built bundle) as a child process on temp dirs.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
export const bin = join(root, 'bin/bootstrap');
export const exampleIni = join(root, 'etc/bootstrap.ini');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** When the process was seen to end (epoch ms, the test's clock: the same system clock as the agent's). */
  endedAt: number;
}

export interface Sandbox {
  dir: string;
  config: string;
  stateDir: string;
  phasesDir: string;
  env: NodeJS.ProcessEnv;
  /** Runs `bootstrap ARGS` with this sandbox's config and state dir in the environment. */
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  start(args: string[], options?: RunOptions): ChildProcess;
  cleanup(): void;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Wrap the command, e.g. ['setpriv', '--reuid=65534', ...]. */
  prefix?: string[];
}

/** A temp dir with a bootstrap.ini (the example unless `ini` is given), a state dir and a phases dir. */
export function sandbox(ini?: string): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-test-'));
  const config = join(dir, 'bootstrap.ini');
  writeFileSync(config, isolatedIni(ini ?? readFileSync(exampleIni, 'utf8')));
  const stateDir = join(dir, 'state');
  const phasesDir = join(dir, 'phases');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    BOOTSTRAP_CONFIG: config,
    BOOTSTRAP_STATE_DIR: stateDir,
    BOOTSTRAP_PHASES_DIR: phasesDir,
  };
  const box: Sandbox = {
    dir,
    config,
    stateDir,
    phasesDir,
    env,
    run: (args, options = {}) => runCli(args, { ...options, env: { ...env, ...options.env } }),
    start: (args, options = {}) => startCli(args, { ...options, env: { ...env, ...options.env } }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return box;
}

/**
 * A test's bootstrap.ini never points at the machine: `[phases] orc_lockfile` (default: the host's
 * /var/run/os-refresh-config.lock, which every TripleO node has) is set to '' (not honoured) unless
 * the test names one. The suite passes on a server where os-refresh-config or bootstrap runs.
 */
export function isolatedIni(text: string): string {
  if (/^\s*orc_lockfile\s*=/m.test(text)) return text;
  return /^\[phases\][ \t]*$/m.test(text) ? text.replace(/^\[phases\][ \t]*$/m, "[phases]\norc_lockfile = ''") : `${text}\n[phases]\norc_lockfile = ''\n`;
}

export function startCli(args: string[], options: RunOptions = {}): ChildProcess {
  const argv = [...(options.prefix ?? []), process.execPath, bin, ...args];
  return spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const child = startCli(args, options);
  return collect(child, options.timeoutMs ?? 60_000);
}

export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bootstrap did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, endedAt: Date.now() });
    });
  });
}

/** Parses --json output, with the whole output in the error when it is not JSON. */
export function json<T = any>(r: Pick<CliResult, 'code' | 'stdout' | 'stderr'>): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/**
 * The agent's own clock: when it logged each stderr line (off a terminal each line starts with an
 * ISO time). Bounds on how long the agent took to do something are taken from these, never from
 * the test's clock around the whole command: on a loaded CI machine starting a process alone has
 * taken seconds (a 3 s bound on a 1 s timeout measured 5 s), and start-up is not what they test.
 */
export function logTimes(stderr: string): { at: number; line: string }[] {
  const lines = [];
  for (const line of stderr.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /.exec(line);
    if (m) lines.push({ at: Date.parse(m[1]!), line });
  }
  return lines;
}

/**
 * Milliseconds by the agent's clock from its first stderr line matching `from` to its last
 * timestamped line. Throws, with the whole stderr, when no line matches.
 */
export function agentMs(stderr: string, from: RegExp): number {
  const lines = logTimes(stderr);
  const start = lines.find((l) => from.test(l.line));
  if (!start) throw new Error(`no timestamped line matching ${String(from)} in stderr:\n${stderr}`);
  return lines.at(-1)!.at - start.at;
}

/**
 * How long the process lived after its last log line (the test saw it end): with agentMs, the
 * whole of what the agent did after a point, start-up left out. A timer or socket left open
 * keeps a CLI that never calls process.exit() alive after it has said everything.
 */
export function exitLagMs(r: CliResult): number {
  const last = logTimes(r.stderr).at(-1);
  if (!last) throw new Error(`no timestamped line in stderr:\n${r.stderr}`);
  return r.endedAt - last.at;
}

/** `nobody`, to test permission errors (root ignores file modes). */
export const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

// The clone may sit in a 0700 dir (`mktemp -d`): the tests that run the CLI as nobody need to
// reach bin/bootstrap, so every dir above the clone gets search permission for others (o+x
// only: nothing becomes listable or writable).
if (process.getuid?.() === 0) {
  for (let dir = root.replace(/\/+$/, ''); dir !== '' && dir !== '/'; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
  }
}

/** True while `pid` runs (a zombie waiting for its reaper does not count). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Waits (bounded) until `pid` no longer runs; true if it ended. */
export async function ended(pid: number, withinMs = 2000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return !isRunning(pid);
}
