// One bounded runner for the programs bootstrap starts from its configuration (the reboot
// command, exec heartbeats, explorers, the bash that sources environment.d): no shell, stdin
// /dev/null, its own process group. It is over when the process exits, not when its output
// closes (a background child may hold the pipe for ever). It is bounded like a step: at its
// deadline or abort, TERM to its group, KILL after the grace; and whenever it ends, what it left
// running is ended too (unless asked to leave it at a normal exit) — its group, and the
// processes that left the group (setsid, double fork), found by a marker in their environment.

import type { ChildProcess, StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import { LineSplitter, type TextMasker } from '../pipeline/output.js';
import { StepExit } from '../errors.js';
import { spawnSizeProblem } from './env-size.js';
import { endProcesses } from './process.js';
import { childProcess } from './lazy.js';
import { randomHex } from './random.js';
import { monotonicMs } from './clock.js';

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
  /** Open a pipe on its fd 3 and keep what it writes there (`fd3`): past this many bytes it is stopped (`output`). */
  collectFd3?: number | undefined;
  /**
   * The `NAME=value`, already in `env`, that marks what it starts (environment.d: the run's own
   * marker); null: none, only its group is ended. Default: a marker of its own, added to its environment.
   */
  marker?: string | null | undefined;
  /**
   * When it exits by itself, leave what it started running (environment.d: an agent a file starts
   * lives on, and is swept with the run); it is still ended at its bound or abort. Its stdout and
   * stderr are then not waited for, only fd 3.
   */
  keepLeftovers?: boolean | undefined;
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
  /** What it wrote on fd 3, with collectFd3. */
  fd3: Buffer;
}

/** Once it exited, how long what it wrote just before may take to be read (its pipes drain). */
const drainMs = 1000;

/** Runs one program to its exit (or its bound), then ends whatever it left (unless keepLeftovers, at a normal exit). Never rejects. */
export async function runChild(o: ChildOptions): Promise<ChildResult> {
  const t0 = monotonicMs();
  const id = o.marker === undefined ? randomHex(8) : null;
  const marker = id ? `BOOTSTRAP_CHILD_ID=${id}` : (o.marker ?? null);
  const env = id ? { ...o.env, BOOTSTRAP_CHILD_ID: id } : o.env;
  const notRun = (error: string): ChildResult => ({ code: null, signal: null, stopped: null, error, durationMs: 0, stdout: Buffer.alloc(0), fd3: Buffer.alloc(0) });
  const tooBig = spawnSizeProblem([o.argv0 ?? o.file, ...o.args], env);
  if (tooBig) return notRun(tooBig);
  let child: ChildProcess;
  try {
    const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', ...(o.collectFd3 === undefined ? [] : ['pipe' as const])];
    child = childProcess().spawn(o.file, o.args, { argv0: o.argv0 ?? o.file, cwd: o.cwd, env, stdio, detached: true });
  } catch (err) {
    return notRun((err as Error).message); // spawn throws some errors (E2BIG, EINVAL) rather than emit them
  }
  const lines = new LineSplitter((line) => o.onLine?.(line), o.masker);
  const errLines = new LineSplitter((line) => o.onLine?.(line), o.masker);
  const stdout = o.collectStdout === undefined ? null : collect(child.stdout!, o.collectStdout, () => stop('output'));
  if (!stdout) child.stdout!.setEncoding('utf8').on('data', (d: string) => lines.push(d));
  const fd3 = o.collectFd3 === undefined ? null : collect(child.stdio[3] as Readable, o.collectFd3, () => stop('output'));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => errLines.push(d));
  const waited = [...(o.keepLeftovers ? [] : [child.stdout!, child.stderr!]), ...(fd3 ? [fd3.stream] : [])];
  const closed = Promise.all(waited.map((s) => new Promise((r) => s.once('close', r))));
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
  // Over: whatever it left running goes now (TERM, KILL after the grace), so nothing holds its
  // pipes; with keepLeftovers (environment.d: an ssh-agent it started) only when it was stopped.
  if (killing || !o.keepLeftovers) await (killing ?? endProcesses(groups(), marker, o.killGraceMs));
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((r) => (grace = setTimeout(r, drainMs)))]);
  clearTimeout(grace);
  for (const s of [child.stdout, child.stderr, fd3?.stream]) s?.destroy();
  lines.flush();
  errLines.flush();
  const durationMs = Math.round(monotonicMs() - t0);
  return { code: error ? null : code, signal: error ? null : signal, stopped, error, durationMs, stdout: stdout?.bytes() ?? Buffer.alloc(0), fd3: fd3?.bytes() ?? Buffer.alloc(0) };
}

/** Keeps what a stream gives, up to `max` bytes; past that, `over` is called and the rest dropped. */
function collect(stream: Readable, max: number, over: () => void): { stream: Readable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  let bytes = 0;
  stream.on('data', (d: Buffer) => {
    bytes += d.length;
    if (bytes > max) over();
    else chunks.push(d);
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

/** One line on how it ended: null for exit 0. */
export function describeChild(r: ChildResult, timeoutMs: number): string | null {
  if (r.error) return `cannot run it: ${r.error}`;
  if (r.stopped === 'timeout') return `timed out after ${(timeoutMs / 1000).toFixed(1)} s (killed)`;
  if (r.stopped === 'abort') return 'stopped: the agent was asked to stop';
  if (r.signal) return `killed by ${r.signal}`;
  return r.code === StepExit.ok ? null : `exit ${r.code}`;
}
