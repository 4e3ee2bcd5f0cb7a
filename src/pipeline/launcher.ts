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
// The protocol (commands on the launcher's fd 3, end lines on its stdout, NUL and a per-launcher
// nonce that never reaches a step's environment, so every byte a step wrote is attributed to it
// and to no other) is described once, in the header of lib/launcher.bash. A step starts when the
// one before it ends, so that is when its timeout starts (the smaller of script_timeout and what
// is left of the run); to stop it, its process group (its pid, under set -m) is read from the
// launcher's children in /proc, and everything the run started is swept by its environment
// marker (util/process).
//
// A step is over when its process exits, not when its output closes: a background child that
// keeps the pipe open delays nothing (its output goes on into the log until the phase ends).

import type { ChildProcess } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { spawnSizeProblem } from '../util/env-size.js';
import { signalOf } from './exit-status.js';
import { bashPath, childrenOf, endProcesses, isProcessAlive, processGroupOf, signalPid, sleep } from '../util/process.js';
import { LineSplitter, Tail, readChanges, type TextMasker } from './output.js';
import { statfsSync } from 'node:fs';
import { packageRoot } from '../version.js';
import { ShellFiles } from './plan.js';
import { childProcess } from '../util/lazy.js';
import { randomHex } from '../util/random.js';
import { monotonicMs } from '../util/clock.js';

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
  /** What it reported in BOOTSTRAP_CHANGES, one change a line (at most 64 KiB of them). */
  changes: string[];
  changesTruncated: boolean;
  /** It exited 0 having created BOOTSTRAP_REBOOT_FILE: the run pauses after its check. */
  rebootAsked: boolean;
  /** Its BOOTSTRAP_REBOOT_FILE, where the reason is (null: no changes dir). */
  rebootFile: string | null;
  /**
   * The changes dir's filesystem had no room after it ran: what it wrote to BOOTSTRAP_CHANGES or
   * BOOTSTRAP_REBOOT_FILE may be lost, so it cannot count as unchanged or as asking nothing.
   */
  reportsLost: boolean;
}

export interface SubmitOptions {
  /** The file is a condition (NAME.if): its exit 1 skips the next this many files. */
  condition?: number;
  /** The files queued right after it that still run if it asks for a reboot (its check). */
  companions?: number;
}

export interface LauncherOptions {
  /**
   * The `NAME=value` every process of the run inherits; a timeout sweeps what carries it
   * (setsid and double-forked children included) besides the step's own group.
   */
  marker?: string | null;
  /** Files with no #! line to run with a shell ([phases] no_shebang = sh | bash), and which. */
  viaSh?: ShellFiles;
  /** A dir of ours (0700) for each file's BOOTSTRAP_CHANGES; none: /dev/null. */
  changesDir?: string | null;
  /** Masks secrets in what the files print and report, as it comes in. */
  masker: TextMasker;
  /** Backouts and error.d: a file runs even when its changes file cannot be created (its reports then count as lost). */
  cleanup?: boolean;
}

export interface RunOptions {
  timeoutMs: number;
  /** Epoch ms by which the step must end whatever timeoutMs says (the run's deadline). */
  deadline?: number;
  killGraceMs: number;
  signal?: AbortSignal;
  /** Each line the step prints (stdout and stderr alike), secrets masked. */
  onLine: (line: string) => void;
  /** Called when the file starts (not when it is queued). */
  onStart?: (() => void) | undefined;
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
  rebootAsked: boolean;
  reportsLost: boolean;
  /** Not run: its changes file could not be created (status F). */
  unprepared: boolean;
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
  private readonly nonce = randomHex(8);
  /** Names this launcher's files in the changes dir, which the run's launchers share (not the nonce: steps see it). */
  private readonly tag = randomHex(4);
  private readonly jobs = new Map<number, Job>();
  /** Seqs whose end line has not come yet, in order: output belongs to the first. */
  private readonly queue: number[] = [];
  private seq = 0;
  private exited: string | null = null;
  /** Stops in progress: close waits for them. */
  private readonly killings: Promise<void>[] = [];
  /** The cat that relays the steps' pipe to us: a child of the launcher, but not a step. */
  private relayPid: number | null = null;

  private readonly marker: string | null;
  private readonly viaSh: ShellFiles;
  private readonly changesDir: string | null;
  private readonly masker: TextMasker;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly cwd: string,
    options: LauncherOptions,
  ) {
    this.masker = options.masker;
    this.marker = options.marker ?? null;
    this.viaSh = options.viaSh ?? new ShellFiles();
    this.changesDir = options.changesDir ?? null;
    const bash = bashPath(env);
    // A file of the package, not a string for `bash -c`: see the end of the script.
    const argv = [bash ?? 'bash', '--noprofile', '--norc', join(packageRoot(), 'lib', 'launcher.bash')];
    // An environment too large to start a program (util/env-size) fails the steps with why, as
    // any launcher that cannot start does: spawn would throw a bare E2BIG (a 70) instead.
    const tooBig = spawnSizeProblem(argv, env, launcherHeadroom);
    if (tooBig) {
      // A stand-in that exits at once: the launcher's one way to fail (no commands, every step failed with why).
      this.child = childProcess().spawn(argv[0]!, ['--noprofile', '--norc', '-c', 'exec 3>&-'], { stdio: ['ignore', 'pipe', 'ignore', 'pipe'], detached: true, env: { PATH: env['PATH'] ?? '' } });
      this.fail(`cannot start the steps of ${cwd}: ${tooBig}`);
    } else {
      this.child = childProcess().spawn(argv[0]!, argv.slice(1), {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
        detached: true, // its own group: a Ctrl-C meant for the agent does not kill it mid-step
      });
    }
    this.commands = this.child.stdio[3] as Writable;
    this.readOutput(this.child.stdout!);
    this.commands.on('error', () => {}); // a dead launcher is reported through 'exit'
    this.child.on('error', (err) => this.fail(`cannot start bash${bash ? ` (${bash})` : ' (none found in /bin, /usr/bin or PATH)'}: ${err.message}`));
    this.child.on('exit', (code, signal) => this.fail(`the step launcher ended (${signal ?? `exit ${code}`})`));
    if (cwd.includes('\n') || this.changesDir?.includes('\n')) this.fail(`the phase dir ${JSON.stringify(cwd)} or the changes dir holds a newline`);
    else this.commands.write(`${this.nonce} ${cwd}\n${probeBytes(this.changesDir)} ${this.tag} ${options.cleanup ? 1 : 0} ${this.changesDir ?? ''}\n`);
  }

  /**
   * Queues a file to run after those queued before it. Resolves with its result, or with
   * 'skipped' when an earlier queued file failed, a condition skipped it, or the run pauses for
   * a reboot. Never rejects.
   */
  submit(path: string, options: RunOptions, how: SubmitOptions = {}): Promise<RawStepResult | 'skipped'> {
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
      t0: monotonicMs(),
      timedOut: false,
      aborted: false,
      rebootAsked: false,
      reportsLost: false,
      unprepared: false,
      killing: null,
      timer: null,
      onAbort: () => this.stop(job, 'abort'),
      done,
      finished,
    };
    // bash reads a pipe a byte at a time: files are named relative to the launcher's dir.
    const misplaced = dirname(path) !== this.cwd || path.includes('\n');
    if (this.exited || misplaced) {
      done();
      return Promise.resolve(this.result(job, this.exited ?? `internal: ${path} is not a file of ${this.cwd}`));
    }
    this.jobs.set(seq, job);
    this.queue.push(seq);
    if (this.queue.length === 1) this.started(job);
    const runner = !this.viaSh.has(path) ? 'R' : this.viaSh.shell === 'bash' ? 'B' : 'S';
    this.commands.write(how.condition === undefined ? `${runner} ${seq} ${basename(path)} ${how.companions ?? 0}\n` : `I${runner} ${seq} ${basename(path)} ${how.condition}\n`);
    return finished.then(async () => {
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

  /**
   * Ends the launcher (its command fd closes, it leaves its loop). Its output is no longer read
   * after that: a background child of a step that still holds the pipe keeps nothing waiting.
   */
  async close(): Promise<void> {
    // No stop outlives its launcher: its sweep would end what the run starts next (error.d).
    for (let from = 0, to = this.killings.length; from < to; from = to, to = this.killings.length) await Promise.all(this.killings.slice(from, to));
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.commands.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(timer);
    }
    this.child.stdout?.destroy();
    // The relay may outlive the launcher while a background child of a step holds the pipe: it
    // is ours, not the step's, and goes now (that child then writes into a closed pipe) — gone
    // before the run's sweep looks, which counts only what steps left (looked for every ms).
    const relay = this.relayPid;
    if (relay) signalPid(relay, 'SIGKILL');
    for (let i = 0; relay && i < 1000 && isProcessAlive(relay); i++) await sleep(1);
  }

  private result(job: Job, error: string | null): RawStepResult {
    const status = job.status;
    if (job.unprepared) error = `not run: its BOOTSTRAP_CHANGES file could not be created in ${this.changesDir} (is that filesystem full?)`;
    const changes = this.changesDir && status !== null ? readChanges(join(this.changesDir, `${this.tag}.${job.seq}`), this.masker) : { lines: [], truncated: false };
    const signal = signalOf(status, job.timedOut || job.aborted);
    return {
      exitCode: error !== null || signal !== null ? null : status,
      signal,
      timedOut: job.timedOut,
      aborted: job.aborted,
      durationMs: Math.round(monotonicMs() - job.t0),
      startedAt: job.startedAt.toISOString(),
      output: job.tail.toString(), // masked line by line as it came
      outputTruncated: job.tail.truncated,
      error,
      changes: changes.lines,
      changesTruncated: changes.truncated,
      rebootAsked: job.rebootAsked,
      rebootFile: this.changesDir && join(this.changesDir, `${this.tag}.${job.seq}.reboot`),
      reportsLost: job.reportsLost,
    };
  }

  /** The job's clock starts: its timeout is what is left of the run if that is less. */
  private started(job: Job): void {
    job.options.onStart?.();
    job.startedAt = new Date();
    job.t0 = monotonicMs();
    const { timeoutMs, deadline } = job.options;
    const ms = Math.min(timeoutMs, deadline === undefined ? Infinity : deadline - Date.now());
    job.timer = setTimeout(() => this.stop(job, 'timeout'), Math.max(0, ms));
    job.options.signal?.addEventListener('abort', job.onAbort, { once: true });
    if (job.options.signal?.aborted) job.onAbort();
  }

  /** The job's end: its timer and abort listener go at once (skipped jobs end many at a time). */
  private ended(job: Job): void {
    clearTimeout(job.timer ?? undefined);
    job.options.signal?.removeEventListener('abort', job.onAbort);
    job.done();
  }

  private stop(job: Job, why: 'timeout' | 'abort'): void {
    if (job.status !== null || job.skipped || job.unprepared || !this.child.pid) return;
    if (why === 'timeout') job.timedOut = true;
    else job.aborted = true;
    if (!job.killing) this.killings.push((job.killing = this.killStep(job)));
  }

  /**
   * TERM to the running step's group, KILL after the grace; then all else the run started (by its
   * marker). The step has a group of its own (`set -m`); the output relay stays in the launcher's:
   * told apart by group, not by the relay's PID, which comes through the relay (one taken for the
   * step lost its end line: the run waited forever). A stop before the step runs waits for it
   * (bounded: 30 s); a job that did not run (skipped, or its launcher gone) is not ended.
   */
  private async killStep(job: Job): Promise<void> {
    const launcher = this.child.pid!;
    const ranNot = () => job.skipped || job.unprepared || (job.status === null && this.exited !== null);
    const ours = () => new Set([launcher, ...(this.relayPid ? [this.relayPid] : []), ...childrenOf(launcher).filter((p) => processGroupOf(p) === launcher)]);
    const deadline = Date.now() + 30_000;
    let groups: number[] = [];
    while (groups.length === 0 && job.status === null && !ranNot() && Date.now() < deadline) {
      groups = childrenOf(launcher).filter((p) => p !== this.relayPid && processGroupOf(p) !== launcher);
      if (groups.length === 0) await sleep(5); // the step not forked yet, or not yet in its own group
    }
    if (groups.length === 0 && ranNot()) return;
    await endProcesses(groups, this.marker, job.options.killGraceMs, ours());
  }

  private readOutput(stream: Readable): void {
    const marker = `\0${this.nonce} `;
    // Secrets are masked in the text of a line, never in an end line (a secret `1` would break
    // it); a long line is cut in pieces before its end line, never inside one, even one that has
    // not all come yet.
    const secrets = this.masker;
    const masker: TextMasker = {
      mask: (line) => {
        const at = line.indexOf(marker);
        return at < 0 ? secrets.mask(line) : `${secrets.mask(line.slice(0, at))}${line.slice(at)}`;
      },
      safeCut: (text, at) => {
        const cut = secrets.safeCut(text, at);
        const end = text.indexOf(marker);
        return end > 0 && end < cut ? end : cut;
      },
      get window() {
        return Math.max(secrets.window, marker.length + 40);
      },
    };
    const splitter = new LineSplitter((line) => {
      const at = line.indexOf(marker);
      const text = at >= 0 ? line.slice(0, at) : line;
      const job = this.jobs.get(this.queue[0] ?? -1);
      if (job && (at < 0 || text !== '')) {
        job.tail.append(`${text}\n`);
        job.options.onLine(text);
      }
      if (at < 0) return;
      const [seq, status, ...flags] = line.slice(at + marker.length).split(' ');
      if (seq === 'P') {
        this.relayPid = Number(status);
        return;
      }
      if (!job) return;
      // The end line: `<seq> <status> [B] [L]`; K or N for a skipped file, F for one not run.
      this.queue.shift();
      if (status === 'K' || status === 'N') job.skipped = true;
      else if (status === 'F') job.unprepared = true;
      else job.status = Number(status);
      job.rebootAsked = flags.includes('B');
      job.reportsLost = flags.includes('L');
      this.ended(job);
      const next = this.jobs.get(this.queue[0] ?? -1);
      if (next) this.started(next);
    }, masker);
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => splitter.push(d));
    // The relay gone while files wait (a step killed it): no end line can come. Told to end, the
    // launcher leaves its loop (a running step still ends first) and its exit fails the rest.
    stream.on('end', () => {
      if (this.queue.length > 0 && !this.exited) this.commands.end();
    });
  }

  private fail(message: string): void {
    this.exited ??= message;
    for (const job of this.jobs.values()) this.ended(job);
  }
}

/**
 * How much the launcher appends to its probe file after each file: one block of the changes
 * dir's filesystem, so that the append needs a free block and fails when there is none.
 */
function probeBytes(changesDir: string | null): number {
  if (!changesDir) return 0;
  try {
    return Math.min(Math.max(statfsSync(changesDir).bsize, 512), 65536);
  } catch {
    return 4096;
  }
}

/** What the launcher and bash add to each step's environment (BOOTSTRAP_CHANGES, BOOTSTRAP_REBOOT_FILE, _ …): room kept for it. */
const launcherHeadroom = 16 * 1024;
