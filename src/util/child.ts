// One bounded runner for the programs bootstrap starts from its configuration (the reboot command,
// exec heartbeats, explorers): no shell, stdin /dev/null, its own process group. It is over when the process
// exits, not when its output closes (a background child may hold the pipe for ever). It is
// bounded like a step: at its deadline or abort, TERM to its group, KILL after the grace; and
// whenever it ends, what it left running is ended too — its group, and the processes that left
// the group (setsid, double fork), found by a marker of its own in their environment.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LineSplitter, type TextMasker } from '../pipeline/output.js';
import { StepExit } from '../errors.js';
import { spawnSizeProblem } from './env-size.js';
import { endProcesses } from './process.js';

export interface ChildOptions {
  /** The program, by absolute path (resolved by the caller: what was checked is what runs). */
  file: string;
  args: string[];
  /** `$0` (default: `file`). */
  argv0?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  timeoutMs: number;
  /** Time between TERM and KILL. */
  killGraceMs: number;
  signal?: AbortSignal | undefined;
  /** Each line it prints (stdout and stderr, or stderr only with collectStdout), bounded in length by LineSplitter. */
  onLine?: ((line: string) => void) | undefined;
  /** Secrets out of each line before it is cut or shown (pipeline/output). */
  masker: TextMasker;
  /** Keep stdout (bytes) instead of splitting it into lines: past this many it is stopped (`output`). */
  collectStdout?: number | undefined;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why bootstrap ended it, if it did. */
  stopped: 'timeout' | 'abort' | 'output' | null;
  /** It could not start (spawn error), with why. */
  error: string | null;
  durationMs: number;
  /** What it printed on stdout, with collectStdout (at most that many bytes). */
  stdout: Buffer;
}

/** Once it exited, how long what it wrote just before may take to be read (its pipes drain). */
const drainMs = 1000;

/** Runs one program to its exit (or its bound), then ends whatever it left. Never rejects. */
export async function runChild(o: ChildOptions): Promise<ChildResult> {
  const t0 = performance.now();
  const id = randomBytes(8).toString('hex');
  const marker = `BOOTSTRAP_CHILD_ID=${id}`;
  const env = { ...o.env, BOOTSTRAP_CHILD_ID: id };
  const tooBig = spawnSizeProblem([o.argv0 ?? o.file, ...o.args], env);
  if (tooBig) return { code: null, signal: null, stopped: null, error: tooBig, durationMs: 0, stdout: Buffer.alloc(0) };
  let child: ChildProcess;
  try {
    child = spawn(o.file, o.args, { argv0: o.argv0 ?? o.file, cwd: o.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  } catch (err) {
    return { code: null, signal: null, stopped: null, error: (err as Error).message, durationMs: 0, stdout: Buffer.alloc(0) }; // spawn throws some errors (E2BIG, EINVAL) rather than emit them
  }
  const lines = new LineSplitter((line) => o.onLine?.(line), o.masker);
  const errLines = new LineSplitter((line) => o.onLine?.(line), o.masker);
  const out: Buffer[] = [];
  let outBytes = 0;
  if (o.collectStdout === undefined) child.stdout!.setEncoding('utf8').on('data', (d: string) => lines.push(d));
  else {
    child.stdout!.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > o.collectStdout!) stop('output');
      else out.push(d);
    });
  }
  child.stderr!.setEncoding('utf8').on('data', (d: string) => errLines.push(d));
  const closed = Promise.all([new Promise((r) => child.stdout!.once('close', r)), new Promise((r) => child.stderr!.once('close', r))]);
  let stopped: ChildResult['stopped'] = null;
  let killing: Promise<void> | null = null;
  const groups = () => (child.pid ? [child.pid] : []);
  const stop = (why: 'timeout' | 'abort' | 'output') => {
    stopped ??= why;
    killing ??= endProcesses(groups(), marker, o.killGraceMs);
  };
  const timer = setTimeout(() => stop('timeout'), Math.max(0, o.timeoutMs));
  const onAbort = () => stop('abort');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  const [code, signal, error] = await new Promise<[number | null, NodeJS.Signals | null, string | null]>((resolve) => {
    child.once('error', (err) => resolve([null, null, err.message]));
    child.once('exit', (c, s) => resolve([c, s, null]));
  });
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', onAbort);
  // Over: whatever it left running goes now (TERM, KILL after the grace), so nothing holds its pipes.
  await (killing ?? endProcesses(groups(), marker, o.killGraceMs));
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((r) => (grace = setTimeout(r, drainMs)))]);
  clearTimeout(grace);
  child.stdout!.destroy();
  child.stderr!.destroy();
  lines.flush();
  errLines.flush();
  return { code: error ? null : code, signal: error ? null : signal, stopped, error, durationMs: Math.round(performance.now() - t0), stdout: Buffer.concat(out) };
}

/** One line on how it ended: null for exit 0. */
export function describeChild(r: ChildResult, timeoutMs: number): string | null {
  if (r.error) return `cannot run it: ${r.error}`;
  if (r.stopped === 'timeout') return `timed out after ${(timeoutMs / 1000).toFixed(1)} s (killed)`;
  if (r.stopped === 'abort') return 'stopped: the agent was asked to stop';
  if (r.signal) return `killed by ${r.signal}`;
  return r.code === StepExit.ok ? null : `exit ${r.code}`;
}
