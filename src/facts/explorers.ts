// explorer.d: executables whose stdout is a fact, run in parallel (bounded), each bounded like a
// step (script_timeout, within what is left of the run). Each runs in its own process group with
// stdin /dev/null, cwd explorer.d and `$0` absolute, as steps do; what it prints on stderr goes
// to the log. util/child runs it: it is over when it exits (what it left running is ended then),
// and a timeout ends its whole tree. A failing explorer fails the run before any step.
// Secrets are masked in its fact after the fact is decoded (a JSON string may spell a secret
// with escapes, `\u00e4`), and in what it prints on stderr as it comes.

import type { RawStepResult } from '../pipeline/launcher.js';
import { Tail } from '../pipeline/output.js';
import { factName, type PlannedStep, type ShellFiles } from '../pipeline/plan.js';
import { failureOf, toStepRecord, type Failure } from '../pipeline/step-result.js';
import type { StepRecord } from '../state/journal.js';
import type { Masker } from '../log/mask.js';
import { runChild } from '../util/child.js';
import { bashPath } from '../util/process.js';
import { factsSchema, parseFact, type Facts, type FactsStore } from './facts.js';
import { monotonicMs } from '../util/clock.js';

/** Most explorers wait on a command, not on a CPU: this many at once, whatever the CPU count. */
const explorerConcurrency = 16;
/** A fact is small; an explorer that prints more than this fails. */
const maxFactBytes = 1024 * 1024;

export interface ExplorerOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Epoch ms by which every explorer must end (the run's deadline). */
  deadline?: number | undefined;
  killGraceMs: number;
  signal?: AbortSignal | undefined;
  /** Files with no #! line to run with a shell, and which (sh or bash). */
  viaSh: ShellFiles;
  onLine: (source: string, line: string) => void;
  masker: Masker;
}

export interface ExplorerResult {
  facts: Facts;
  records: StepRecord[];
  /** The first failing explorer, in plan order. */
  failure: Failure | null;
}

async function runExplorers(explorers: PlannedStep[], o: ExplorerOptions): Promise<ExplorerResult> {
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
    else facts[factName(step.name)] = o.masker.maskDeep(parseFact(stdout));
  }
  return { facts, records, failure };
}

async function runOne(step: PlannedStep, o: ExplorerOptions): Promise<{ raw: RawStepResult; stdout: string }> {
  const startedAt = new Date();
  const [file, args] = o.viaSh.has(step.path) ? [o.viaSh.shell === 'bash' ? (bashPath(o.env) ?? 'bash') : '/bin/sh', [step.path]] : [step.path, []];
  const tail = new Tail();
  const source = `explorer/${step.name}`;
  const timeoutMs = Math.max(0, Math.min(o.timeoutMs, o.deadline === undefined ? Infinity : o.deadline - Date.now()));
  // util/child: over when it exits (what it left running is ended then), its tree killed at its bound.
  const r = await runChild({
    file,
    args,
    argv0: step.path,
    cwd: step.path.slice(0, step.path.lastIndexOf('/')),
    env: o.env,
    timeoutMs,
    killGraceMs: o.killGraceMs,
    signal: o.signal,
    collectStdout: maxFactBytes,
    masker: o.masker,
    onLine: (line) => {
      tail.append(`${line}\n`);
      o.onLine(source, line);
    },
  });
  const raw: RawStepResult = {
    exitCode: r.stopped || r.error || r.signal ? null : r.code,
    signal: r.stopped === 'timeout' || r.stopped === 'abort' ? null : r.signal,
    timedOut: r.stopped === 'timeout',
    aborted: r.stopped === 'abort',
    durationMs: r.durationMs,
    startedAt: startedAt.toISOString(),
    output: tail.toString(),
    outputTruncated: tail.truncated,
    error: r.error ? `cannot run it: ${r.error}` : r.stopped === 'output' ? `printed more than ${maxFactBytes / 1024 / 1024} MiB (a fact is small)` : null,
    changes: [],
    changesTruncated: false,
    rebootAsked: false,
    rebootFile: null,
    reportsLost: false,
  };
  return { raw, stdout: r.stdout.toString('utf8') }; // masked once decoded
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
  const t0 = monotonicMs();
  const explored = await runExplorers(explorers, o);
  const all = { ...builtin.facts, ...explored.facts };
  const failed = explored.records.filter((r) => r.status === 'failure').map((r) => r.name);
  await store?.write({ schema: factsSchema, collected_at: new Date().toISOString(), facts: all, failed, builtin_ms: builtin.ms, explorers_ms: Math.round((monotonicMs() - t0) * 10) / 10 });
  return { ...explored, all };
}
