// Taking the run lock over from a dead agent: what its run left is ended and removed, and its
// outcome settled, so no run goes unreported and none is reported twice.

import { join } from 'node:path';
import { runCallback } from '../callback/payload.js';
import { ExitCode } from '../errors.js';
import type { DeadOwner, LockOwner } from '../lock/pid-lock.js';
import { runMarker } from '../pipeline/environment.js';
import { effectiveProducts, enabledVersions } from '../products.js';
import { isRunId, JournalStore, type RunJournal } from '../state/journal.js';
import { sweepMarked } from '../util/process.js';
import type { RunContext } from './context.js';
import { journalOf } from './journal-of.js';
import { endPause } from './reboot.js';
import { lastRunOf, tallyAfter } from './record.js';
import { removeChangesDirs } from './run-files.js';
import { removeFile } from '../util/files.js';

/**
 * A dead holder's run (called once, by the one process that takes the lock over): end whatever
 * it left running, remove its snapshot (secrets), and settle its record: committed runs keep
 * their outcome (a held callback is released); others are recorded as failed, with a callback,
 * so no run goes unreported and none is reported twice.
 */
export async function takeOverFrom(ctx: RunContext, owner: DeadOwner): Promise<void> {
  ctx.log.warn(`taking over the run lock from ${owner.command} (pid ${owner.pid}, started ${owner.startedAt}), which is no longer running`);
  const runId = owner.runId;
  if (runId !== undefined && !isRunId(runId)) {
    ctx.log.warn(`the lock record names run '${String(runId).slice(0, 40)}', which is not a run id; ignored`);
  }
  const valid = runId !== undefined && isRunId(runId) ? runId : null;
  if (valid && owner.sameBoot) {
    const left = await sweepMarked(runMarker(valid), 1000);
    if (left.length) ctx.log.warn(`ended ${left.length} process(es) left running by the dead run ${valid}`);
  }
  // A run that waits for its reboot keeps its snapshot (unless it died resuming: it ends now).
  const paused = (await ctx.store.read().catch(() => null))?.paused_run;
  const spare = paused && !(paused.resuming && paused.id === valid) ? paused.id : null;
  if (valid) await removeChangesDirs(valid);
  await new JournalStore(ctx.stateDir).prune(ctx.config.phases.keepRuns, spare).catch((err) => ctx.log.error(`could not remove config snapshots: ${(err as Error).message}`));
  if (valid) await settleDeadRun(ctx, owner, valid).catch((err) => ctx.log.error(`could not record the dead run ${valid}: ${(err as Error).message}`));
}

async function settleDeadRun(ctx: RunContext, owner: LockOwner, runId: string): Promise<void> {
  const journals = new JournalStore(ctx.stateDir);
  const state = await ctx.store.read();
  const held = await ctx.callbacks.held(runId);
  if (state.last_run?.id === runId || (state.paused_run?.id === runId && !state.paused_run.resuming)) {
    for (const file of held) await ctx.callbacks.release(file, runId);
    return; // it committed its outcome, or its pause for a reboot; only the lock was left
  }
  const config = ctx.config;
  const resuming = state.paused_run?.id === runId;
  const message = resuming
    ? `the agent (pid ${owner.pid}) died while it resumed the run after its reboot (killed, or the power went); the run is not resumed twice; found by the next run`
    : `the agent (pid ${owner.pid}) died during the run, before recording its outcome (killed?); found by the next run`;
  const previous = await journals.read(runId).catch(() => null);
  const journal: RunJournal =
    previous ??
    journalOf({ id: runId, action: owner.action ?? 'unknown', command: owner.command, server: config.server.name, status: 'failure', startedAt: owner.startedAt, phasesDir: ctx.phasesDir, mode: state.mode ?? config.server.defaultMode, products: enabledVersions(effectiveProducts(config, state)) }, []);
  // Not committed: whatever its journal said, the run did not take effect.
  if (journal.status !== 'failure' || !journal.failure || resuming) {
    Object.assign(journal, { status: 'failure', exit_code: ExitCode.failed, failure: { phase: 'agent', step: '', kind: 'signal', exit_code: null, message } });
  }
  Object.assign(journal, tallyAfter(state, journal)); // a failure, counted as such
  await journals.write(journal);
  await ctx.store.update(ctx.commandLine, (s) => {
    Object.assign(s, tallyAfter(s, journal)); // before last_run: an older state.json's tally is read from the previous one
    s.last_run = lastRunOf(journal);
    endPause(s, runId);
  });
  removeFile(join(ctx.stateDir, 'runs', `${runId}.config.json`));
  if (held.length) for (const file of held) await ctx.callbacks.release(file, runId, runCallback(journal));
  else await ctx.callbacks.queue(runCallback(journal));
  ctx.log.warn(`recorded run ${runId} as failed: ${journal.failure!.message}`);
}
