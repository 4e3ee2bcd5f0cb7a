// Run journals: `runs/<run-id>.json`, one per run, success or failure; the last N are kept.
// Run ids sort by time, so the newest is the last name.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { DataError, stateFsError } from '../errors.js';
import { readFileNoFollow, writeFileAtomic } from './atomic.js';
import { shapeProblem, type Shape } from './shape.js';
import type { RunJournal } from './journal-types.js';
import { randomHex } from '../util/random.js';
import { namesIn, removeFile, stateDirNames } from '../util/files.js';

export const journalSchema = 1;

// The records a journal is made of live in journal-types.ts, what it says in brief (summaries,
// counts, changes) in journal-summary.ts; both are exported from here.
export { verifyVerdicts, type StepRecord, type VerifyResult, type StepVerdict, type VerifySummary, type RebootRecord, type StepCounts, type PhaseRecord, type FailureRecord, type RunTimings, type RunJournal } from './journal-types.js';
export { changesOf, countSteps, describeCounts, describeRunCounts, failurePlace, stepChanges, summarizeRun, type RunSummary } from './journal-summary.js';

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomHex(3)}`;
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
    return stateDirNames(this.dir)
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -5))
      .filter((id) => idPattern.test(id))
      .sort();
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
    for (const n of namesIn(this.dir)) {
      // and the changes files of runs that are over
      const leftOver = (n.endsWith('.config.json') && n !== `${running}.config.json`) || (n.endsWith('.changes') && n !== `${running}.changes`);
      if (leftOver) await fsp.rm(join(this.dir, n), { recursive: true, force: true });
    }
  }

  /** Keeps the newest `keep` journals and touches nothing else: safe while another run goes on (a refusal is recorded without the run lock). */
  async pruneJournals(keep: number): Promise<void> {
    const ids = await this.ids();
    for (const id of ids.slice(0, Math.max(0, ids.length - keep))) removeFile(join(this.dir, `${id}.json`));
  }
}

/** Removes a run's journal (a live one that could not be replaced by the final one: see record.ts). */
export async function removeJournal(stateDir: string, id: string): Promise<void> {
  if (!isRunId(id)) throw new DataError(`not a run id: '${id}'`);
  removeFile(join(stateDir, 'runs', `${id}.json`));
}
