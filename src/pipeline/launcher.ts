// Runs steps, one after another, through a tiny bash launcher (lib/launcher.bash) that forks
// and execs each step itself. Node's own spawn forks the whole agent (~2 ms a step, twice
// run-parts' cost); the launcher is a small process whose fork is much cheaper. No shell parses
// anything of the step: the launcher runs `"$path"` with the path as one quoted word. Under
// `set -m` bash puts each job, foreground ones too, in its own process group even without a
// terminal (dash turns job control off without one, so it must be bash). A step's stdout and
// stderr share one pipe, so their lines keep their order; its stdin is the launcher's,
// /dev/null, so nothing is opened per step. (A foreground job rather than `& wait`: ~0.1 ms a
// step less; the script handles the one way a foreground job upsets bash, a death by SIGINT.)
//
// Steps are queued ahead (a phase's steps and checks at once), so no step waits for a round trip
// through the agent. After a step fails, the launcher skips what is queued until told `C`.
//
// Protocol, on the launcher's fd 3 (closed for steps): `R <seq> <path>` runs a file, `C` clears
// the failed state. After each R it writes an end line on stdout: NUL, a per-launcher nonce,
// seq, and the exit status (or K: skipped), so every byte a step wrote is attributed to it and
// to no other. A step starts when the one before it ends, so that is when its timeout starts; to
// stop it, its process group (its pid, under set -m) is read from the launcher's children in
// /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import { childrenOf, isGroupAlive, signalGroup, sleep } from '../util/process.js';
import { LineSplitter, Tail } from './output.js';
import { packageRoot } from '../version.js';

export interface RawStepResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  startedAt: string;
  output: string;
  outputTruncated: boolean;
  /** Set when the step could not be run at all. */
  error: string | null;
}

export interface RunOptions {
  timeoutMs: number;
  killGraceMs: number;
  signal?: AbortSignal;
  /** Each line the step prints (stdout and stderr alike). */
  onLine: (line: string) => void;
  /** Masks secrets in the journal's output tail. */
  mask: (text: string) => string;
}

/** A queued file: resolves with its result, or 'skipped' when an earlier one failed. */
interface Job {
  seq: number;
  options: RunOptions;
  tail: Tail;
  status: number | null;
  skipped: boolean;
  startedAt: Date;
  t0: number;
  timedOut: boolean;
  aborted: boolean;
  killing: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  onAbort: () => void;
  done: () => void;
  finished: Promise<void>;
}

export class Launcher {
  private readonly child: ChildProcess;
  /** The launcher's fd 3: commands. */
  private readonly commands: Writable;
  private readonly nonce = randomBytes(8).toString('hex');
  private readonly jobs = new Map<number, Job>();
  /** Seqs whose end line has not come yet, in order: output belongs to the first. */
  private readonly queue: number[] = [];
  private seq = 0;
  private exited: string | null = null;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly cwd: string,
  ) {
    // A file of the package, not a string for `bash -c`: see the end of the script.
    this.child = spawn(bashPath, ['--noprofile', '--norc', join(packageRoot(), 'lib', 'launcher.bash')], {
      cwd,
      env: { ...env, BOOTSTRAP_LAUNCHER_NONCE: this.nonce },
      stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
      detached: true, // its own group: a Ctrl-C meant for the agent does not kill it mid-step
    });
    this.commands = this.child.stdio[3] as Writable;
    this.readOutput(this.child.stdout!);
    this.commands.on('error', () => {}); // a dead launcher is reported through 'exit'
    this.child.on('error', (err) => this.fail(`cannot start bash: ${err.message}`));
    this.child.on('exit', (code, signal) => this.fail(`the step launcher ended (${signal ?? `exit ${code}`})`));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Queues a file to run after those queued before it. Resolves with its result, or with
   * 'skipped' when an earlier queued file failed. Never rejects.
   */
  submit(path: string, options: RunOptions): Promise<RawStepResult | 'skipped'> {
    const seq = ++this.seq;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const job: Job = {
      seq,
      options,
      tail: new Tail(),
      status: null,
      skipped: false,
      startedAt: new Date(),
      t0: performance.now(),
      timedOut: false,
      aborted: false,
      killing: null,
      timer: null,
      onAbort: () => this.stop(job, 'abort'),
      done,
      finished,
    };
    if (this.exited || path.includes('\n')) {
      done();
      return Promise.resolve(this.result(job, this.exited ?? 'the step path holds a newline'));
    }
    this.jobs.set(seq, job);
    this.queue.push(seq);
    if (this.queue.length === 1) this.started(job);
    // bash reads a pipe a byte at a time: name files relative to the launcher's cwd when we can.
    const word = dirname(path) === this.cwd ? `./${basename(path)}` : path;
    this.commands.write(`R ${seq} ${word}\n`);
    return finished.then(async () => {
      clearTimeout(job.timer ?? undefined);
      options.signal?.removeEventListener('abort', job.onAbort);
      if (job.killing) await job.killing; // nothing the step started is left running
      this.jobs.delete(seq);
      if (job.skipped) return 'skipped';
      return this.result(job, job.status === null ? (this.exited ?? 'the step did not report its end') : null);
    });
  }

  /** After a failure: run what is queued from now on again. */
  clearFailure(): void {
    if (!this.exited) this.commands.write('C\n');
  }

  /** Ends the launcher (its command fd closes, it leaves its loop). */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.commands.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }

  private result(job: Job, error: string | null): RawStepResult {
    const status = job.status;
    const signalled = status !== null && status > 128 && (job.timedOut || job.aborted || fatalSignals.has(status - 128));
    return {
      exitCode: error !== null || signalled ? null : status,
      signal: signalled ? signalName(status! - 128) : null,
      timedOut: job.timedOut,
      aborted: job.aborted,
      durationMs: Math.round(performance.now() - job.t0),
      startedAt: job.startedAt.toISOString(),
      output: job.options.mask(job.tail.toString()),
      outputTruncated: job.tail.truncated,
      error,
    };
  }

  private started(job: Job): void {
    job.startedAt = new Date();
    job.t0 = performance.now();
    job.timer = setTimeout(() => this.stop(job, 'timeout'), Math.max(0, job.options.timeoutMs));
    job.options.signal?.addEventListener('abort', job.onAbort);
    if (job.options.signal?.aborted) job.onAbort();
  }

  private stop(job: Job, why: 'timeout' | 'abort'): void {
    if (job.status !== null || job.skipped || !this.child.pid) return;
    if (why === 'timeout') job.timedOut = true;
    else job.aborted = true;
    job.killing ??= killStep(this.child.pid, job.options.killGraceMs, () => job.status !== null || this.exited !== null);
  }

  private readOutput(stream: Readable): void {
    const marker = `\0${this.nonce} `;
    const splitter = new LineSplitter((line) => {
      const at = line.indexOf(marker);
      const text = at >= 0 ? line.slice(0, at) : line;
      const job = this.jobs.get(this.queue[0] ?? -1);
      if (job && (at < 0 || text !== '')) {
        job.tail.append(`${text}\n`);
        job.options.onLine(text);
      }
      if (at < 0 || !job) return;
      // The end line: `<seq> <status>`, or `<seq> K` when it was skipped.
      const status = line.slice(at + marker.length).split(' ')[1];
      this.queue.shift();
      if (status === 'K') job.skipped = true;
      else job.status = Number(status);
      job.done();
      const next = this.jobs.get(this.queue[0] ?? -1);
      if (next) this.started(next);
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => splitter.push(d));
  }

  private fail(message: string): void {
    this.exited ??= message;
    for (const job of this.jobs.values()) job.done();
  }
}

/**
 * TERM to the running step's process group, KILL after the grace period; waits until the group
 * is gone. The step is the launcher's only child, and leads its own group (set -m).
 */
async function killStep(launcherPid: number, graceMs: number, ended: () => boolean): Promise<void> {
  let groups: number[] = [];
  for (let i = 0; i < 200 && groups.length === 0 && !ended(); i++) {
    groups = childrenOf(launcherPid);
    if (groups.length === 0) await sleep(5); // between two steps: the next one is being forked
  }
  const alive = () => groups.some(isGroupAlive);
  for (const g of groups) signalGroup(g, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(25);
  for (const g of groups) if (isGroupAlive(g)) signalGroup(g, 'SIGKILL');
  for (let i = 0; i < 200 && alive(); i++) await sleep(10);
}

/** /bin/bash when it is there (a minimal or missing PATH must not matter), else bash from PATH. */
const bashPath = existsSync('/bin/bash') ? '/bin/bash' : 'bash';

const fatalSignals = new Set([1, 2, 3, 4, 6, 7, 8, 9, 11, 13, 14, 15, 24, 25]);

function signalName(n: number): string {
  const entry = Object.entries(osConstants.signals).find(([, v]) => v === n);
  return entry ? entry[0] : `signal ${n}`;
}

