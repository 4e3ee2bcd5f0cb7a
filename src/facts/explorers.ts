// explorer.d: executables whose stdout is a fact, run in parallel (bounded), each bounded like a
// step (script_timeout, within what is left of the run). Each runs in its own process group with
// stdin /dev/null, cwd explorer.d and `$0` absolute, as steps do; what it prints on stderr goes
// to the log; a timeout ends its group. A failing explorer fails the run before any step.

import { spawn } from 'node:child_process';
import type { Failure } from '../pipeline/environment.js';
import type { RawStepResult } from '../pipeline/launcher.js';
import { LineSplitter, Tail } from '../pipeline/output.js';
import { factName, type PlannedStep } from '../pipeline/plan.js';
import { failureOf, toStepRecord } from '../pipeline/pipeline.js';
import type { StepRecord } from '../state/journal.js';
import { terminateGroups } from '../util/process.js';
import { factsSchema, parseFact, type Facts, type FactsStore } from './facts.js';

/** Most explorers wait on a command, not on a CPU: this many at once, whatever the CPU count. */
export const explorerConcurrency = 16;
/** A fact is small; an explorer that prints more than this fails. */
export const maxFactBytes = 1024 * 1024;

export interface ExplorerOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Epoch ms by which every explorer must end (the run's deadline). */
  deadline?: number | undefined;
  killGraceMs: number;
  signal?: AbortSignal | undefined;
  /** Files with no #! line to run with /bin/sh. */
  viaSh: ReadonlySet<string>;
  onLine: (source: string, line: string) => void;
  mask: (text: string) => string;
}

export interface ExplorerResult {
  facts: Facts;
  records: StepRecord[];
  /** The first failing explorer, in plan order. */
  failure: Failure | null;
}

export async function runExplorers(explorers: PlannedStep[], o: ExplorerOptions): Promise<ExplorerResult> {
  const results: { step: PlannedStep; raw: RawStepResult; stdout: string }[] = new Array(explorers.length);
  let next = 0;
  const worker = async () => {
    while (next < explorers.length) {
      const i = next++;
      results[i] = { step: explorers[i]!, ...(await runOne(explorers[i]!, o)) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(explorerConcurrency, explorers.length) }, worker));
  const facts: Facts = {};
  const records: StepRecord[] = [];
  let failure: Failure | null = null;
  for (const { step, raw, stdout } of results) {
    const record = toStepRecord('explorer', step.name, 'explorer', raw, 1);
    records.push(record);
    const failed = failureOf({ phase: 'explorer', name: step.name }, raw);
    if (failed) failure ??= failed;
    else facts[factName(step.name)] = parseFact(stdout);
  }
  return { facts, records, failure };
}

async function runOne(step: PlannedStep, o: ExplorerOptions): Promise<{ raw: RawStepResult; stdout: string }> {
  const startedAt = new Date();
  const t0 = performance.now();
  const [file, args] = o.viaSh.has(step.path) ? ['/bin/sh', [step.path]] : [step.path, []];
  const child = spawn(file, args, { cwd: step.path.slice(0, step.path.lastIndexOf('/')), env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, argv0: step.path });
  const out: Buffer[] = [];
  let outBytes = 0;
  let tooMuch = false;
  const tail = new Tail();
  const source = `explorer/${step.name}`;
  const lines = new LineSplitter((line) => {
    tail.append(`${line}\n`);
    o.onLine(source, line);
  });
  child.stdout!.on('data', (d: Buffer) => {
    outBytes += d.length;
    if (outBytes > maxFactBytes) {
      if (!tooMuch) stop('output');
      tooMuch = true;
    } else out.push(d);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => lines.push(d));
  const outClosed = new Promise((resolve) => child.stdout!.once('close', resolve));
  let why: 'timeout' | 'abort' | 'output' | null = null;
  let killing: Promise<void> | null = null;
  function stop(reason: 'timeout' | 'abort' | 'output') {
    why ??= reason;
    if (child.pid) killing ??= terminateGroups([child.pid], o.killGraceMs);
  }
  const ms = Math.min(o.timeoutMs, o.deadline === undefined ? Infinity : o.deadline - Date.now());
  const timer = setTimeout(() => stop('timeout'), Math.max(0, ms));
  const onAbort = () => stop('abort');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  const [code, signal, error] = await new Promise<[number | null, NodeJS.Signals | null, string | null]>((resolve) => {
    child.on('error', (err) => resolve([null, null, `cannot run it: ${err.message}`]));
    child.on('exit', (c, s) => resolve([c, s, null]));
  });
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', onAbort);
  if (killing) await killing;
  // Its output is in the pipe when it exits; a background child that holds the pipe delays nothing.
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([outClosed, new Promise((r) => (grace = setTimeout(r, 1000)))]);
  clearTimeout(grace);
  child.stdout!.destroy();
  child.stderr!.destroy();
  lines.flush();
  const raw: RawStepResult = {
    exitCode: why || error || signal ? null : code,
    signal: why === 'timeout' || why === 'abort' ? null : signal,
    timedOut: why === 'timeout',
    aborted: why === 'abort',
    durationMs: Math.round(performance.now() - t0),
    startedAt: startedAt.toISOString(),
    output: o.mask(tail.toString()),
    outputTruncated: tail.truncated,
    error: error ?? (why === 'output' ? `printed more than ${maxFactBytes / 1024 / 1024} MiB (a fact is small)` : null),
    changes: [],
    changesTruncated: false,
    rebootAsked: false,
    rebootFile: null,
    reportsLost: false,
  };
  return { raw, stdout: o.mask(Buffer.concat(out).toString('utf8')) };
}

/**
 * Runs explorer.d after the built-in facts and, unless `store` is null (a dry run), writes
 * facts.json: every fact collected, and the explorers that failed (their facts are absent).
 */
export async function exploreAndStore(
  explorers: PlannedStep[],
  builtin: { facts: Facts; ms: number },
  store: FactsStore | null,
  o: ExplorerOptions,
): Promise<ExplorerResult & { all: Facts }> {
  const t0 = performance.now();
  const explored = await runExplorers(explorers, o);
  const all = { ...builtin.facts, ...explored.facts };
  const failed = explored.records.filter((r) => r.status === 'failure').map((r) => r.name);
  await store?.write({ schema: factsSchema, collected_at: new Date().toISOString(), facts: all, failed, builtin_ms: builtin.ms, explorers_ms: Math.round((performance.now() - t0) * 10) / 10 });
  return { ...explored, all };
}
