// Run journals: `runs/<run-id>.json`, one per run, success or failure; the last N are kept.
// Run ids sort by time, so the newest is the last name.

import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { DataError, stateFsError } from '../errors.js';
import { readFileNoFollow, writeFileAtomic } from './atomic.js';
import { shapeProblem, type Shape } from './shape.js';
import type { LastSuccess } from './state.js';

export const journalSchema = 1;

export interface StepRecord {
  phase: string;
  name: string;
  role: 'step' | 'check' | 'backout' | 'error' | 'condition' | 'explorer';
  /** `skipped`: its NAME.if exited 1 (the reason is the message). */
  status: 'success' | 'failure' | 'skipped';
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  started_at: string;
  duration_ms: number;
  attempts: number;
  message: string;
  output_tail: string;
  output_truncated: boolean;
  check: StepRecord | null;
  /** Its NAME.if, when it has one. */
  condition?: StepRecord | null;
  /** What it reported in BOOTSTRAP_CHANGES, one change a line (absent in journals of older agents). */
  changes?: string[];
  changes_truncated?: boolean;
  /** It asked for a reboot, with this reason. */
  reboot?: string;
  /** It ran and reported nothing, under `[phases] unreported = changed`: counted as changed. */
  unreported?: 'changed';
  /** In a verify's journal (the step itself never ran): what its NAME.if and NAME.check said of it. */
  verify?: VerifyResult;
}

/**
 * server.verify, per step: `ok` its check passed, `drift` its check failed, `no check` it has
 * none, `skipped` its NAME.if exited 1, `error` its check or NAME.if could not run (timeout,
 * signal, cannot start; a NAME.if that exits neither 0 nor 1).
 */
export type VerifyResult = 'ok' | 'drift' | 'no check' | 'skipped' | 'error';

/** A verified step's result, as --json and the callback give it. */
export interface StepVerdict {
  phase: string;
  step: string;
  result: VerifyResult;
  /** Why: a skip's reason, what a drifted check printed first, how a check failed to run; null for ok and no check. */
  message: string | null;
}

/** The results of a verify's steps, in order, from its journal's records. */
export function verifyVerdicts(phases: PhaseRecord[]): StepVerdict[] {
  return phases.flatMap((p) => p.steps.map((s) => ({ phase: p.phase, step: s.name, result: s.verify ?? 'error', message: s.verify === 'ok' || s.verify === 'no check' ? null : s.message })));
}

/** A verify in brief: `error` when a check could not run, else `drift` when one failed, else `ok`. */
export interface VerifySummary {
  status: 'ok' | 'drift' | 'error';
  ok: number;
  drift: number;
  no_check: number;
  skipped: number;
  error: number;
}

export interface RebootRecord {
  phase: string;
  step: string;
  reason: string;
  requested_at: string;
}

/** How many steps changed something, changed nothing, were skipped by their NAME.if, failed. */
export interface StepCounts {
  changed: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

export interface PhaseRecord {
  phase: string;
  dir: string;
  /** `paused`: a step asked for a reboot here; `pending`: after it, waiting for the resume. */
  status: 'success' | 'failure' | 'missing' | 'not run' | 'paused' | 'pending';
  steps: StepRecord[];
  duration_ms: number;
}

export interface FailureRecord {
  phase: string;
  step: string;
  /** `refused`: the run was refused before its first step (phase `agent`; the journal's exit_code says why: 73, 77, 78). */
  kind: 'exit' | 'signal' | 'timeout' | 'check' | 'heartbeat' | 'condition' | 'reboot' | 'refused';
  exit_code: number | null;
  message: string;
}

/** Where a run spent its time outside its files (ms; null: did not happen), its boots added up: runs.blame's own rows. */
export interface RunTimings {
  /** From asking for the run lock (and os-refresh-config's) to holding them, a dead run's takeover included. */
  lock_wait_ms: number;
  /** The built-in facts and explorer.d (its environment.d sourcing is in environment_ms). */
  explorers_ms: number | null;
  /** Every sourcing of environment.d, summed (each phase's, explorer.d's, backouts' and error.d's). */
  environment_ms: number | null;
  health_gate_ms: number | null;
  /** The in-run delivery of the outbox (older callbacks first, then this run's), bounded by [callback] timeout. */
  callback_ms: number | null;
}


export interface RunJournal {
  schema: number;
  id: string;
  action: string;
  command: string;
  server: string;
  /**
   * `running`: written while the run goes on (at its start, then about once a second);
   * `rebooting`: paused for a reboot a step asked for, until server.resume;
   * `drift` (action verify only): a check failed, none failed to run;
   * `refused`: refused before its first step (trust, state, config, plan): no phases, the error in `failure`.
   */
  status: 'success' | 'failure' | 'running' | 'rebooting' | 'drift' | 'refused';
  /** null while running. */
  exit_code: number | null;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  /** null: not known (a run refused for an invalid bootstrap.ini, without --phases-dir). */
  phases_dir: string | null;
  mode: string;
  mode_previous: string | null;
  product: string | null;
  version: string | null;
  version_previous: string | null;
  /** Enabled product → the version in force after the run (a failed upgrade leaves the old one). */
  products: Record<string, string | null>;
  callback_url: string | null;
  /** The run's --label, if any. */
  label?: string | null;
  phases: PhaseRecord[];
  failure: FailureRecord | null;
  backouts: StepRecord[];
  error_steps: StepRecord[];
  health: unknown;
  /** The facts of this run (built-in and explorer.d), and the explorers' records. */
  facts?: Record<string, unknown> | null;
  explorers?: StepRecord[];
  /** The steps' changes in brief (see StepCounts). */
  counts?: StepCounts;
  /** Each boot the run ran in (a run paused for a reboot goes on in the next). */
  boots?: { boot_id: string | null; started_at: string }[];
  /** Each reboot a step asked for. */
  reboots?: RebootRecord[];
  /** While running: the step that runs now. */
  current?: { phase: string; step: string; started_at: string } | null;
  /** Action verify: its outcome in brief (each step's result is its record's `verify`). */
  verify?: VerifySummary;
  /** Where the run spent its time besides its files (absent in journals of older agents). */
  timings?: RunTimings;
  /**
   * Once the run is over: the last success with this run counted (itself, when it succeeded) and
   * the failed or refused runs since (absent while running, and in journals of older agents).
   */
  last_success?: LastSuccess | null;
  failed_runs_since_success?: number;
}

export type RunSummary = ReturnType<typeof summarizeRun>;

/** The outcome of a run in brief: the --json output of run commands and the core of its callback. */
export function summarizeRun(j: RunJournal) {
  return {
    id: j.id,
    action: j.action,
    status: j.status,
    exit_code: j.exit_code,
    started_at: j.started_at,
    finished_at: j.finished_at,
    duration_ms: j.duration_ms,
    mode: j.mode,
    products: j.products,
    label: j.label ?? null,
    ...(j.action === 'upgrade' && j.product ? { upgrade: { product: j.product, from: j.version_previous, to: j.version } } : {}),
    failure: j.failure,
    phases: j.phases.map((p) => ({ phase: p.phase, status: p.status, steps: p.steps.length, failed: p.steps.filter((s) => s.status === 'failure').length, duration_ms: p.duration_ms })),
    counts: countSteps(j),
    changes: changesOf(j),
    ...(j.boots && j.boots.length > 1 ? { boots: j.boots } : {}),
    ...(j.reboots?.length ? { reboots: j.reboots } : {}),
    ...(j.failed_runs_since_success === undefined ? {} : { last_success: j.last_success ?? null, failed_runs_since_success: j.failed_runs_since_success }),
  };
}

/** A step changed something when it, its check or its .if reported a change (in any attempt: see the pipeline). */
export function stepChanges(s: StepRecord): string[] {
  return [...(s.condition?.changes ?? []), ...(s.changes ?? []), ...(s.check?.changes ?? [])];
}

/** `5 steps: 1 changed, 3 unchanged, 1 skipped, 0 failed`: the summary line's and the CLI's words. */
export function describeCounts(c: StepCounts): string {
  const steps = c.changed + c.unchanged + c.skipped + c.failed;
  return `${steps} step${steps === 1 ? '' : 's'}: ${c.changed} changed, ${c.unchanged} unchanged, ${c.skipped} skipped, ${c.failed} failed`;
}

export function countSteps(j: Pick<RunJournal, 'phases'>): StepCounts {
  const counts: StepCounts = { changed: 0, unchanged: 0, skipped: 0, failed: 0 };
  for (const s of j.phases.flatMap((p) => p.steps)) {
    // A step skipped by its .if on a retry may have changed things on the attempt before: changed.
    if (s.status === 'failure') counts.failed++;
    else if (stepChanges(s).length || s.unreported === 'changed') counts.changed++;
    else if (s.status === 'skipped') counts.skipped++;
    else counts.unchanged++;
  }
  return counts;
}

/** Each step, backout and error.d file that reported changes, with them. */
export function changesOf(j: Pick<RunJournal, 'phases' | 'backouts' | 'error_steps'>): { phase: string; step: string; changes: string[] }[] {
  const out: { phase: string; step: string; changes: string[] }[] = [];
  for (const s of [...j.phases.flatMap((p) => p.steps), ...j.backouts, ...j.error_steps]) {
    const changes = stepChanges(s);
    if (changes.length) out.push({ phase: s.phase, step: s.name, changes });
  }
  return out;
}

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

const idPattern = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/** A run id has one shape: ids read from files are checked before they name a path or a process. */
export function isRunId(id: unknown): id is string {
  return typeof id === 'string' && idPattern.test(id);
}

/** A journal that is not JSON or not of a journal's shape (hand-edited, torn, another tool's). */
export class BrokenJournalError extends DataError {
  constructor(file: string, problem: string) {
    super(`run journal ${file} is broken: ${problem}`, 'move it away or restore it from a backup; runs.list leaves it out');
  }
}

// What readers of a journal rely on (state/shape.ts). Fields that journals of older agents lack
// are optional; everything a reader walks into (phases, steps, checks) is checked down to the leaves.
const stepFields: Record<string, Shape> = {
  phase: 'string',
  name: 'string',
  role: 'string',
  status: 'string',
  exit_code: 'number?',
  signal: 'string?',
  timed_out: 'boolean?',
  started_at: 'string',
  duration_ms: 'number',
  attempts: 'number?',
  message: 'string',
  output_tail: 'string',
  output_truncated: 'boolean?',
  changes: ['string', '?'],
  changes_truncated: 'boolean?',
  reboot: 'string?',
};
const companionShape: Shape = { '?': 'nullable', ...stepFields, check: 'object?', condition: 'object?' };
const stepShape: Shape = { ...stepFields, check: companionShape, condition: companionShape, unreported: 'string?' };
const failureShape: Shape = { '?': 'nullable', phase: 'string', step: 'string', kind: 'string', exit_code: 'number?', message: 'string' };
const journalShape: Shape = {
  schema: 'number',
  id: 'string',
  action: 'string',
  command: 'string?',
  server: 'string?',
  status: 'string',
  exit_code: 'number?',
  started_at: 'string',
  finished_at: 'string?',
  duration_ms: 'number?',
  phases_dir: 'string?',
  mode: 'string?',
  mode_previous: 'string?',
  product: 'string?',
  version: 'string?',
  version_previous: 'string?',
  products: { '*': 'string?' },
  callback_url: 'string?',
  label: 'string?',
  phases: [{ phase: 'string', dir: 'string?', status: 'string', steps: [stepShape], duration_ms: 'number?' }],
  failure: failureShape,
  backouts: [stepShape],
  error_steps: [stepShape],
  facts: 'object?',
  explorers: [stepShape, '?'],
  counts: { '?': 'nullable', changed: 'number', unchanged: 'number', skipped: 'number', failed: 'number' },
  boots: [{ boot_id: 'string?', started_at: 'string' }, '?'],
  reboots: [{ phase: 'string', step: 'string', reason: 'string', requested_at: 'string' }, '?'],
  current: { '?': 'nullable', phase: 'string', step: 'string', started_at: 'string' },
  timings: { '?': 'nullable', lock_wait_ms: 'number', explorers_ms: 'number?', environment_ms: 'number?', health_gate_ms: 'number?', callback_ms: 'number?' },
  last_success: { '?': 'nullable', id: 'string', action: 'string', finished_at: 'string' },
  failed_runs_since_success: 'number?',
};

export class JournalStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'runs');
  }

  async write(journal: RunJournal, options: { durable?: boolean } = {}): Promise<string> {
    const file = join(this.dir, `${journal.id}.json`);
    try {
      await writeFileAtomic(file, `${JSON.stringify(journal)}\n`, 0o600, { durable: options.durable ?? true }); // compact: a 300-step journal is read by tools, not people (runs.show)
    } catch (err) {
      throw stateFsError(err, `write run journal ${file}`);
    }
    return file;
  }

  /** A new run id that sorts after the journals of its second (else at random: a refusal, then a run), so `last` is the newest. */
  async newId(now = new Date()): Promise<string> {
    const id = newRunId(now);
    const second = id.slice(0, id.indexOf('-'));
    const latest = (await this.ids().catch(() => [])).filter((i) => i.startsWith(`${second}-`)).at(-1);
    const floor = latest === undefined ? -1 : parseInt(latest.slice(second.length + 1), 16);
    if (latest === undefined || latest < id || floor >= 0xffffff) return id;
    return `${second}-${(floor + 1 + Math.floor(Math.random() * (0xffffff - floor))).toString(16).padStart(6, '0')}`;
  }

  /** Run ids, oldest first. */
  async ids(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.dir))
        .filter((n) => n.endsWith('.json'))
        .map((n) => n.slice(0, -5))
        .filter((id) => idPattern.test(id))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw stateFsError(err, `read ${this.dir}`);
    }
  }

  /** A run by id, id prefix or `last`. */
  async read(id: string): Promise<RunJournal> {
    if (isRunId(id)) {
      try {
        return await this.readId(id);
      } catch (err) {
        if (!(err instanceof DataError && /^no run/.test(err.message))) throw err;
      }
    }
    const ids = await this.ids();
    const wanted = id === 'last' ? ids.at(-1) : ids.filter((i) => i.startsWith(id)).at(-1);
    if (!wanted) throw new DataError(id === 'last' ? 'no run has been recorded yet' : `no run '${id}'`, 'see bootstrap runs.list');
    return this.readId(wanted);
  }

  private async readId(id: string): Promise<RunJournal> {
    const file = join(this.dir, `${id}.json`);
    let doc: unknown;
    try {
      doc = JSON.parse(await readFileNoFollow(file));
    } catch (err) {
      if (err instanceof SyntaxError) throw new BrokenJournalError(file, `not JSON (${err.message})`);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DataError(`no run '${id}'`, 'see bootstrap runs.list');
      throw stateFsError(err, `read ${file}`);
    }
    const problem = shapeProblem(doc, journalShape) ?? ((doc as RunJournal).id === id ? null : `its id is not the ${id} of its name`);
    if (problem) throw new BrokenJournalError(file, problem);
    return doc as RunJournal;
  }

  /**
   * Every readable journal, oldest first: one listing of the dir, one read per journal. One that
   * cannot be read or is of the wrong shape is left out and reported through `skipped`.
   */
  async list(skipped: (problem: string) => void = () => {}): Promise<RunJournal[]> {
    return this.readAll(await this.ids(), skipped);
  }

  /** The newest `n` readable journals, oldest first: reads at most `n` files. */
  async recent(n: number, skipped: (problem: string) => void = () => {}): Promise<RunJournal[]> {
    return this.readAll((await this.ids()).slice(-n), skipped);
  }

  private async readAll(ids: string[], skipped: (problem: string) => void): Promise<RunJournal[]> {
    const out: RunJournal[] = [];
    for (const id of ids) {
      try {
        out.push(await this.readId(id));
      } catch (err) {
        skipped(`${(err as Error).message}: left out`);
      }
    }
    return out;
  }

  /**
   * Keeps the newest `keep` journals, and removes the config snapshots (they hold secrets) and
   * changes dirs of every run but `running`, e.g. those a killed agent left.
   */
  async prune(keep: number, running: string | null = null): Promise<void> {
    await this.pruneJournals(keep);
    let names: string[] = [];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      // no runs dir
    }
    for (const n of names) {
      // and the changes files of runs that are over
      const leftOver = (n.endsWith('.config.json') && n !== `${running}.config.json`) || (n.endsWith('.changes') && n !== `${running}.changes`);
      if (leftOver) await fsp.rm(join(this.dir, n), { recursive: true, force: true });
    }
  }

  /** Keeps the newest `keep` journals and touches nothing else: safe while another run goes on (a refusal is recorded without the run lock). */
  async pruneJournals(keep: number): Promise<void> {
    const ids = await this.ids();
    for (const id of ids.slice(0, Math.max(0, ids.length - keep))) await fsp.rm(join(this.dir, `${id}.json`), { force: true });
  }
}

/** Where a run failed: `configure/20-haproxy`, `the health gate (web)`, or `agent` alone (the agent's own failure, no file). */
export function failurePlace(f: Pick<FailureRecord, 'phase' | 'step' | 'kind'>): string {
  if (f.kind === 'heartbeat') return `the health gate${f.step ? ` (${f.step})` : ''}`;
  return f.step ? `${f.phase}/${f.step}` : f.phase;
}

/**
 * The counts in words, for people: as describeCounts, but a run that failed where no step did (the
 * health gate, the agent) says where instead of `0 failed`. The `counts` field stays steps only:
 * callbacks, metrics (bootstrap_last_run_steps) and --json count files; `failure` says the rest.
 */
export function describeRunCounts(j: Pick<RunJournal, 'phases' | 'status' | 'failure'>): string {
  const counts = countSteps(j);
  const text = describeCounts(counts);
  if (j.status !== 'failure' || !j.failure || counts.failed > 0) return text;
  const place = j.failure.kind === 'heartbeat' ? 'the health gate' : j.failure.phase === 'agent' ? 'the agent' : failurePlace(j.failure);
  return `${text.replace(/, 0 failed$/, '')}; ${place} failed`;
}

/** Removes a run's journal (a live one that could not be replaced by the final one: see record.ts). */
export async function removeJournal(stateDir: string, id: string): Promise<void> {
  if (!isRunId(id)) throw new DataError(`not a run id: '${id}'`);
  await fsp.rm(join(stateDir, 'runs', `${id}.json`), { force: true });
}
