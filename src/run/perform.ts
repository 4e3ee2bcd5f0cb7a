// One run of the pipeline for provision, refresh, mode and upgrade, and its one entry: validate
// the request → a dry run? → take the run lock → a run paused for its reboot? → snapshot the
// effective configuration (or, resuming, read it back) → execute → record. Whatever happens the
// locks are released and the run's files removed, but for the snapshot of a run that waits for
// its reboot.

import { join } from 'node:path';
import { readSecret } from '../callback/deliver.js';
import { ExitCode, RunWaitingError } from '../errors.js';
import { sweepLeftovers } from './facts.js';
import { type OrcLock, takeOrcLock } from '../lock/orc-lock.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { JournalStore } from '../state/journal.js';
import type { PausedRun } from '../state/state.js';
import { bootId } from '../util/process.js';
import { maskSecrets, type RunContext } from './context.js';
import { dryRun } from './dry-run.js';
import { execute, type ToExecute } from './execute.js';
import { prepareResume } from './reboot.js';
import { finishRun } from './record.js';
import { validateRequest, resolveIntent } from './request.js';
import { makeChangesDir, removeChangesDir, type RunFiles, snapshotOf } from './run-files.js';
import { takeOverFrom } from './takeover.js';
import type { RunOutcome, RunRequest } from './types.js';
import { removeFile } from '../util/files.js';
import { monotonicMs } from '../util/clock.js';

export async function performRun(ctx: RunContext, req: RunRequest): Promise<RunOutcome> {
  let request = req;
  const config = ctx.config;
  validateRequest(config, request);
  // A callback that could not be signed is refused now (78), not sent unsigned later.
  if (ctx.callbacks.target(request.callbackUrl)) readSecret(config.callback.secretFile);
  if (request.dryRun) return dryRun(ctx, request);

  await ctx.store.ensureDir();
  await sweepLeftovers(ctx);
  const asked = monotonicMs();
  const lock = await takeRunLock(ctx, request.waitMs);
  let lockWaitMs = monotonicMs() - asked;
  // A run paused for a reboot keeps its snapshot (0600): the resume runs with it.
  let keepSnapshot = false;
  let files: RunFiles | null = null;
  let orc: OrcLock | null = null;
  try {
    const state = await ctx.store.read();
    const paused = state.paused_run ?? null;
    const given = requestGiven(ctx, request, paused);
    if (!given) return { id: null, status: 'nothing', exitCode: ExitCode.ok, journal: null, journalPath: null, dryRun: null };
    request = given;
    // The id once the lock is ours (ids sort by start), in the record before anything is
    // written: a takeover after a kill from here on knows the run. A resumed run keeps its id.
    const runId = paused && request.resume ? paused.id : await new JournalStore(ctx.stateDir).newId();
    const log = ctx.log.child({ run_id: runId }); // [log] file: every line of the run carries run_id
    ctx = { ...ctx, log, callbacks: ctx.callbacks.withLog(log) };
    files = { runId, snapshot: join(ctx.stateDir, 'runs', `${runId}.config.json`), changesDir: '', lock };
    await lock.update({ runId, action: paused && request.resume ? paused.action : request.action });
    ctx.log.debug(`run lock ${lock.lock.path} taken for run ${runId}`);
    const orcAsked = monotonicMs();
    orc = await takeOrcLock(config.phases.orcLockfile, request.waitMs, (m) => ctx.log.warn(m));
    lockWaitMs += monotonicMs() - orcAsked;
    files.changesDir = await makeChangesDir(ctx.stateDir, runId);
    let run: ToExecute;
    if (paused && request.resume) {
      const resume = await prepareResume(ctx, request, paused, files.snapshot);
      keepSnapshot = 'refused' in resume; // nothing ran: the run still waits, with its snapshot
      if ('refused' in resume) throw resume.refused;
      run = resume;
    } else {
      run = { request, intent: resolveIntent(config, state, request) };
      maskSecrets(ctx, run.intent.products);
      await writeJsonAtomic(files.snapshot, snapshotOf(config, run.intent, request, runId), 0o600, { durable: false });
    }
    const executed = await execute(ctx, run, files, lockWaitMs);
    keepSnapshot = executed.paused;
    return executed.paused ? executed.outcome : await finishRun(ctx, run.request, run.intent, executed.journal);
  } finally {
    // A run paused for its reboot keeps its snapshot (the resume reads it back), even when
    // something threw after the pause was recorded: state.json says whether it is paused.
    if (files && !keepSnapshot && !(await pausedAs(ctx, files.runId))) removeFile(files.snapshot);
    if (files?.changesDir) await removeChangesDir(files.changesDir);
    await orc?.release();
    await lock.release();
  }
}

/**
 * The request, given the run paused for its reboot (if any): while one waits nothing else runs
 * (75) and the timer's refresh resumes it, once the boot id changed. Null: nothing to resume.
 */
function requestGiven(ctx: RunContext, request: RunRequest, paused: PausedRun | null): RunRequest | null {
  if (paused && !request.resume) {
    if (request.action !== 'refresh') throw new RunWaitingError(paused);
    request = { ...request, resume: 'continue' };
  }
  if (!paused) return request.resume ? null : request;
  if (request.resume === 'continue' && paused.boot_id === bootId(ctx.env)) throw new RunWaitingError(paused, true);
  return request;
}

/** Whether state.json records run `runId` as paused for its reboot (unreadable: assume so, keep). */
async function pausedAs(ctx: RunContext, runId: string): Promise<boolean> {
  try {
    return (await ctx.store.read()).paused_run?.id === runId;
  } catch {
    return true;
  }
}

/** The run lock (a run's, and server.verify's); a dead holder's run is settled first (takeover.ts). */
export function takeRunLock(ctx: RunContext, waitMs: number | undefined) {
  return ctx.runLock.acquire({
    command: ctx.commandLine,
    waitMs,
    onTakeOver: (owner) => takeOverFrom(ctx, owner),
    onWait: (owner) => ctx.log.info(`waiting for the run lock: ${owner ? `${owner.command} (pid ${owner.pid}) holds it` : 'another run is taking it'}`),
    onCompromised: (err) => ctx.log.error(`the run lock was lost: ${err.message}`),
  });
}
