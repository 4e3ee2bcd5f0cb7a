// Recording a finished run so that nothing contradicts anything else across a crash: callback
// held → journal → state.json (commit on success, last_run, the last success and the failures
// since, the end of a pause) → callback released → delivered, its time in the journal; then the
// summary line and the run's outcome. The tally of successes (tallyAfter) is refusal.ts's too.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { runCallback } from '../callback/payload.js';
import { ExitCode, toBootstrapError, type BootstrapError } from '../errors.js';
import type { EffectiveProduct } from '../products.js';
import { JournalStore, countSteps, describeRunCounts, failurePlace, removeJournal, type RunJournal } from '../state/journal.js';
import { successOf, type LastSuccess, type StateDoc } from '../state/state.js';
import type { RunContext } from './context.js';
import { endPause } from './reboot.js';
import type { Intent, RunOutcome, RunRequest } from './types.js';
import { monotonicMs } from '../util/clock.js';

/** Records a finished run (recordRun), logs its summary line, and returns its outcome. */
export async function finishRun(ctx: RunContext, request: RunRequest, intent: Intent, journal: RunJournal): Promise<RunOutcome> {
  const journalPath = await recordRun(ctx, request, intent, journal);
  const summary = `run ${journal.id}: ${journal.status} (${describeRunCounts(journal)}; ${(journal.duration_ms / 1000).toFixed(1)} s); journal ${journalPath ?? '(not written)'}`;
  if (journal.status === 'success') ctx.log.info(summary);
  else ctx.log.error(`${summary}; failed at ${failurePlace(journal.failure!)}: ${journal.failure!.message}`);
  return { id: journal.id, status: journal.status === 'refused' ? 'failure' : journal.status, exitCode: journal.exit_code ?? ExitCode.internal, journal, journalPath, dryRun: null };
}

/**
 * Records the outcome so that nothing contradicts anything else, even across a crash: the
 * callback is queued first but held (an agent killed from here on still reports), then the
 * journal, then state.json (commit and last_run); only then is the callback released. If the
 * journal or state cannot be written, the run becomes a failure with that exit code, and the
 * held callback says so. A takeover of a killed agent settles a held callback by what state.json
 * says was committed (takeover.ts).
 */
async function recordRun(ctx: RunContext, request: RunRequest, intent: Intent, journal: RunJournal): Promise<string | null> {
  // The journal and callback say what state.json will: the last success with this run counted.
  const before = await ctx.store.read().catch(() => null);
  if (before) Object.assign(journal, tallyAfter(before, journal));
  const held = await ctx.callbacks.hold(runCallback(journal), request.callbackUrl);
  const journals = new JournalStore(ctx.stateDir);
  let journalPath: string | null = await journals.write(journal).catch((err: unknown) => {
    notRecorded(ctx, journal, before, toBootstrapError(err), 'journal');
    return null;
  });
  // Its live journal must not say `running` for ever: removed, then a smaller one written if it fits.
  const unwritten = journalPath === null;
  if (unwritten) await makeRoom(ctx, journal.id);
  try {
    await ctx.store.update(ctx.commandLine, (s) => {
      // The tally first: successOf reads last_run when state.json has no counter yet.
      Object.assign(s, tallyAfter(s, journal));
      if (journal.status === 'success') commit(s, request, intent, new Date(journal.finished_at));
      s.last_run = lastRunOf(journal);
      endPause(s, journal.id); // a resumed (or abandoned) run is over
    });
  } catch (err) {
    notRecorded(ctx, journal, before, toBootstrapError(err), 'state');
    if (journalPath) await journals.write(journal).catch(() => {});
  }
  // Before the callback's release and delivery, which may need room too: the journal is what runs.show reads.
  if (unwritten) journalPath = await writeSmaller(ctx, journals, journal);
  if (held) await ctx.callbacks.release(held, journal.id, runCallback(journal));
  await journals.prune(ctx.config.phases.keepRuns, journal.id).catch((err) => ctx.log.warn(`old journals not pruned: ${(err as Error).message}`));
  if (held) await deliverTimed(ctx, journal, journalPath);
  return journalPath;
}

/**
 * The run's outcome could not be recorded (its journal or state.json): the run is a failure with
 * that error's exit code (73 for a full disk), and nothing is committed. A run that failed
 * already keeps its own failure; otherwise the failure is the agent's: phase `agent`, step `record`.
 */
function notRecorded(ctx: RunContext, journal: RunJournal, before: StateDoc | null, error: BootstrapError, what: 'journal' | 'state'): void {
  ctx.log.error(`the outcome of run ${journal.id} could not be recorded: ${error.describe()}`);
  const message = `${what === 'journal' ? "the run's journal" : 'state.json'} could not be written, so nothing was committed: ${error.message}`;
  Object.assign(journal, {
    status: 'failure',
    exit_code: error.exitCode,
    failure: journal.failure ?? { phase: 'agent', step: 'record', kind: 'exit', exit_code: null, message },
  });
  if (before) Object.assign(journal, tallyAfter(before, journal)); // a failure (state.json may not count it)
}

/**
 * The journal could not be written (a full disk, most often): the run's files that are of no use
 * any more go first — its live journal (which says `running`), its changes dir (the launcher's
 * probe holds a block a step) and its config snapshot (a run that is not paused: the caller
 * removes both anyway) — making room for state.json, what server.status and metrics read.
 */
async function makeRoom(ctx: RunContext, id: string): Promise<void> {
  await removeJournal(ctx.stateDir, id).catch((err) => ctx.log.warn(`run ${id}: its live journal could not be removed: ${(err as Error).message}`));
  for (const name of [`${id}.changes`, `${id}.config.json`]) await fsp.rm(join(ctx.stateDir, 'runs', name), { recursive: true, force: true }).catch(() => {});
}

/**
 * The journal could not be written whole (a full disk; its live one, `running`, is removed by
 * then): written again without output tails and facts, which may fit. Returns its path, or null.
 */
async function writeSmaller(ctx: RunContext, journals: JournalStore, journal: RunJournal): Promise<string | null> {
  const bare = (s: RunJournal['backouts'][number]) => ({ ...s, output_tail: '', output_truncated: s.output_tail !== '' || s.output_truncated });
  const small: RunJournal = { ...journal, facts: null, explorers: [], phases: journal.phases.map((p) => ({ ...p, steps: p.steps.map(bare) })), backouts: journal.backouts.map(bare), error_steps: journal.error_steps.map(bare) };
  const path = await journals.write(small).catch(() => null);
  if (path) {
    ctx.log.warn(`run ${journal.id}: its journal was written without output tails and facts (no room for them)`);
    return path;
  }
  ctx.log.error(`run ${journal.id}: no journal was written (no room even for a small one)`);
  return null;
}

/**
 * Delivers the outbox and puts the time it took in the journal, rewritten for it (not durably: it
 * was written durably before; a crash loses only this timing). Rewritten rather than carried to
 * the next run's journal: runs.blame's `(callback)` row belongs to the run that waited for it.
 */
async function deliverTimed(ctx: RunContext, journal: RunJournal, journalPath: string | null): Promise<void> {
  const t0 = monotonicMs();
  await ctx.callbacks.deliver();
  if (!journal.timings) return;
  journal.timings = { ...journal.timings, callback_ms: Math.round(monotonicMs() - t0) };
  if (journalPath) await new JournalStore(ctx.stateDir).write(journal, { durable: false }).catch(() => {});
}


/** What last_success and failed_runs_since_success become once `run` is over: a success resets, a failure or refusal counts (a pause is neither: never called for one). */
export function tallyAfter(before: StateDoc, run: Pick<RunJournal, 'id' | 'action' | 'status' | 'finished_at'>): { last_success: LastSuccess | null; failed_runs_since_success: number } {
  if (run.status === 'success') return { last_success: { id: run.id, action: run.action, finished_at: run.finished_at }, failed_runs_since_success: 0 };
  const previous = successOf(before);
  return { last_success: previous.last_success, failed_runs_since_success: previous.failed_runs_since_success + 1 };
}

/** last_run of a finished run's journal. */
export function lastRunOf(journal: RunJournal): StateDoc['last_run'] {
  const f = journal.failure;
  return {
    id: journal.id,
    action: journal.action,
    status: journal.status === 'success' || journal.status === 'refused' ? journal.status : 'failure',
    exit_code: journal.exit_code ?? ExitCode.failed,
    started_at: journal.started_at,
    finished_at: journal.finished_at,
    duration_ms: journal.duration_ms,
    label: journal.label ?? null,
    failure: f && { phase: f.phase, step: f.step, kind: f.kind, exit_code: f.exit_code },
    // The step counts too, so what reads state.json (metrics after every run) need not open the journal.
    counts: countSteps(journal),
  };
}

/** The state changes of a successful run (a failed run leaves state.json as it was). */
function commit(s: StateDoc, request: RunRequest, intent: Intent, finished: Date): void {
  const record = (p: EffectiveProduct) => {
    const saved = (s.products[p.name] ??= { enabled: p.enabled, version: null, settings: {} });
    saved.enabled = p.enabled;
    return saved;
  };
  if (request.action === 'provision') {
    s.provisioned_at = finished.toISOString();
    for (const p of intent.products) record(p).version = p.enabled ? p.version : (s.products[p.name]?.version ?? null);
  }
  if (request.action === 'mode') s.mode = intent.mode;
  if (request.action === 'upgrade') {
    const p = intent.products.find((x) => x.name === request.product)!;
    record(p).version = intent.toVersion!;
  }
}
