// server.verify: is the server still as configured? Under the run lock (a verify sees no run half
// way), explorers first (facts.json written: a verify is a real look at the server), then each
// step's NAME.if and NAME.check with the environment a run would give it (verify-steps.ts); never
// a step, a backout or error.d. Journaled as action `verify`, kept as state.json's last_verify
// (last_run and last_success are a converging run's, untouched), called back with --report.
//
// The run lock records the action but no run id: a takeover settles a dead holder's run as a
// failed run, which a verify is not. What a killed verify leaves (its scratch dir, the processes
// its checks started) is found by the next command's sweep, as a dry run's is (util/scratch).

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { verifyCallback } from '../callback/payload.js';
import { readSecret } from '../callback/deliver.js';
import { redactUrl } from '../config/config.js';
import { ExitCode, RunWaitingError, UsageError } from '../errors.js';
import { factEnvironment } from '../facts/facts.js';
import { takeOrcLock, type OrcLock } from '../lock/orc-lock.js';
import { EnvironmentFileError, phaseEnvironment, runEnvironment, runMarker } from '../pipeline/environment.js';
import { planRefusal, type Plan } from '../pipeline/plan.js';
import { toFailureRecord } from '../pipeline/step-result.js';
import { enabledVersions } from '../products.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { JournalStore, newRunId, verifyVerdicts, type FailureRecord, type PhaseRecord, type RunJournal, type StepVerdict, type VerifySummary } from '../state/journal.js';
import type { StateDoc } from '../state/state.js';
import { bootId, describeProcesses, sweepMarkedNamed } from '../util/process.js';
import { makeScratchDir } from '../util/scratch.js';
import { maskSecrets, planOf, type RunContext } from './context.js';
import { exploreNow, sweepLeftovers, withBuiltinFacts } from './facts.js';
import { journalOf, startTimings, type JournalRun } from './journal-of.js';
import { takeRunLock } from './perform.js';
import { resolveIntent, runInfoOf, validateRequest } from './request.js';
import { snapshotOf } from './run-files.js';
import type { Intent } from './types.js';
import { firstProblem, summarize, verifySteps } from './verify-steps.js';

export type { StepVerdict } from '../state/journal.js';

export interface VerifyRequest {
  /** undefined: fail at once (75) when a run holds the lock; ms (Infinity: forever) to wait. */
  waitMs?: number | undefined;
  /** Bound on the whole verify (default: [phases] run_timeout). */
  timeoutMs?: number | undefined;
  label?: string | undefined;
  /** Call back with the outcome (to callbackUrl, else [callback] url). */
  report?: boolean | undefined;
  callbackUrl?: string | undefined;
  /** Stops the checks (SIGINT/SIGTERM): they could not run, the verify ends in error. */
  signal?: AbortSignal | undefined;
}

export interface VerifyOutcome {
  id: string;
  status: VerifySummary['status'];
  /** 0 ok, 2 drift, 1 a check (or an explorer, environment.d) could not run. */
  exitCode: number;
  summary: VerifySummary;
  steps: StepVerdict[];
  journal: RunJournal;
  journalPath: string;
}

export async function performVerify(ctx: RunContext, request: VerifyRequest): Promise<VerifyOutcome> {
  checkRequest(ctx, request);
  await ctx.store.ensureDir();
  await sweepLeftovers(ctx);
  const plan = planOf(ctx);
  refuseUntrusted(ctx, plan);
  const waitStart = Date.now();
  const lock = await takeRunLock(ctx, request.waitMs);
  let orc: OrcLock | null = null;
  try {
    await lock.update({ action: 'verify' });
    orc = await takeOrcLock(ctx.config.phases.orcLockfile, request.waitMs, (m) => ctx.log.warn(m));
    const state = await ctx.store.read();
    // The server is mid-change while a run waits for its reboot: what a check says means nothing yet.
    if (state.paused_run) throw new RunWaitingError(state.paused_run);
    const runId = newRunId();
    const log = ctx.log.child({ run_id: runId }); // [log] file: every line of the verify carries run_id
    const own = { ...ctx, log, callbacks: ctx.callbacks.withLog(log) };
    const journal = await look(own, request, plan, state, runId, Date.now() - waitStart);
    return await record(own, request, journal);
  } finally {
    await orc?.release();
    await lock.release();
  }
}

/** Refused before anything runs: a bad label, --callback-url without --report, a callback key that cannot sign. */
function checkRequest(ctx: RunContext, request: VerifyRequest): void {
  validateRequest(ctx.config, { action: 'refresh', label: request.label });
  if (request.callbackUrl !== undefined && !request.report) throw new UsageError('--callback-url is where --report sends the outcome: pass --report too', 'e.g. bootstrap server.verify --report --callback-url https://prov.example/api');
  if (request.report && ctx.callbacks.target(request.callbackUrl)) readSecret(ctx.config.callback.secretFile);
}

/** As a run refuses its plan (77/78); what allow_insecure lets run is run, loudly. */
function refuseUntrusted(ctx: RunContext, plan: Plan): void {
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  for (const r of plan.refused) if (r.kind === 'insecure') ctx.log.warn(`INSECURE (allow_insecure = true): running ${r.path}, ${r.reason}`);
}

/** The look itself, in a scratch dir of its own (the config snapshot): explorers, then the steps' checks. */
async function look(ctx: RunContext, request: VerifyRequest, plan: Plan, state: StateDoc, runId: string, lockWaitMs: number): Promise<RunJournal> {
  const startedAt = new Date().toISOString();
  const intent = resolveIntent(ctx.config, state, { action: 'refresh' });
  maskSecrets(ctx, intent.products);
  const marker = runMarker(runId);
  const snapshot = { ...snapshotOf(ctx.config, intent, { action: 'refresh', label: request.label }, runId), action: 'verify', resume: undefined };
  const scratch = await makeScratchDir(ctx.stateDir, runId, (dir) => writeJsonAtomic(join(dir, 'config.json'), snapshot, 0o600, { durable: false }));
  const run: JournalRun = { facts: null, explorers: [], boots: [{ boot_id: bootId(ctx.env), started_at: startedAt }], reboots: [], timings: { ...startTimings(undefined), lock_wait_ms: Math.round(lockWaitMs) } };
  ctx.log.info(`verify ${runId}: checks on ${ctx.config.server.name} (mode ${intent.mode}), phases from ${ctx.phasesDir}`);
  try {
    const info = runInfoOf(ctx, { action: 'refresh', label: request.label }, intent, { runId, snapshot: join(scratch, 'config.json') });
    const baseEnv = runEnvironment(ctx.env, { ...info, action: 'verify' });
    const { phases, stopped } = await explorersThenSteps(ctx, request, plan, baseEnv, marker, run);
    return journalOfVerify(ctx, request, intent, { runId, startedAt, phases, stopped, run });
  } finally {
    const left = await sweepMarkedNamed(marker, ctx.config.phases.killGraceMs);
    if (left.length) ctx.log.warn(`ended ${left.length} process(es) the checks left running: ${describeProcesses(left)}`);
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/** explorer.d as a run collects it (facts.json written), then the steps' NAME.if and NAME.check. */
async function explorersThenSteps(ctx: RunContext, request: VerifyRequest, plan: Plan, baseEnv: NodeJS.ProcessEnv, marker: string, run: JournalRun): Promise<{ phases: PhaseRecord[]; stopped: FailureRecord | null }> {
  const signal = request.signal ?? new AbortController().signal;
  const deadline = Date.now() + (request.timeoutMs ?? ctx.config.phases.runTimeoutMs);
  const { builtin, store } = await withBuiltinFacts(ctx, baseEnv);
  run.facts = builtin.facts;
  try {
    const explored = await exploreNow(ctx, plan, baseEnv, marker, builtin, store, signal);
    Object.assign(run, { facts: explored.all, explorers: explored.records });
    if (explored.failure) return { phases: [], stopped: toFailureRecord(explored.failure) };
    Object.assign(baseEnv, factEnvironment(explored.facts, (m) => ctx.log.warn(m)));
  } catch (err) {
    if (!(err instanceof EnvironmentFileError)) throw err;
    return { phases: [], stopped: { phase: 'explorer', step: `environment.d/${err.file.split('/').at(-1)}`, kind: err.kind, exit_code: null, message: err.message } };
  }
  const sourcing = { plan, phases: ctx.config.phases, log: ctx.log, baseEnv, marker };
  return verifySteps({ plan, phases: ctx.config.phases, log: ctx.log, marker, deadline, signal, environment: (phase) => phaseEnvironment(sourcing, phase, { signal, deadline }) });
}

interface Looked {
  runId: string;
  startedAt: string;
  phases: PhaseRecord[];
  /** An explorer or environment.d that failed: the steps after it were not checked. */
  stopped: FailureRecord | null;
  run: JournalRun;
}

/** The verify's journal: action verify, status success / drift / failure (a check could not run), its summary. */
function journalOfVerify(ctx: RunContext, request: VerifyRequest, intent: Intent, l: Looked): RunJournal {
  const summary = summarize(verifyVerdicts(l.phases), l.stopped !== null);
  const head = {
    id: l.runId,
    action: 'verify',
    command: ctx.commandLine,
    server: ctx.config.server.name,
    status: 'running' as const,
    startedAt: l.startedAt,
    phasesDir: ctx.phasesDir,
    mode: intent.mode,
    products: enabledVersions(intent.products),
    callbackUrl: request.callbackUrl ? redactUrl(request.callbackUrl) : null, // as a run's journal: the flag's, redacted
    label: request.label,
  };
  const status = summary.status === 'ok' ? 'success' : summary.status === 'drift' ? 'drift' : 'failure';
  const exitCode = summary.status === 'ok' ? ExitCode.ok : summary.status === 'drift' ? ExitCode.drift : ExitCode.failed;
  return { ...journalOf(head, l.phases, l.run), status, exit_code: exitCode, failure: l.stopped ?? firstProblem(l.phases), verify: summary };
}

/**
 * Journal, then state.json's last_verify (never last_run: a verify converges nothing), then the
 * callback with --report. A journal or state that cannot be written is the command's error (73).
 */
async function record(ctx: RunContext, request: VerifyRequest, journal: RunJournal): Promise<VerifyOutcome> {
  const journals = new JournalStore(ctx.stateDir);
  const journalPath = await journals.write(journal);
  const summary = journal.verify!;
  await ctx.store.update(ctx.commandLine, (s) => {
    s.last_verify = { id: journal.id, finished_at: journal.finished_at, status: summary.status, drift: summary.drift, ok: summary.ok, no_check: summary.no_check, skipped: summary.skipped };
  });
  await journals.prune(ctx.config.phases.keepRuns).catch((err) => ctx.log.warn(`old journals not pruned: ${(err as Error).message}`));
  logSummary(ctx, journal, summary);
  if (request.report) {
    if (!ctx.callbacks.target(request.callbackUrl)) ctx.log.warn('--report: no [callback] url is configured; nothing was sent');
    await ctx.callbacks.report(verifyCallback(journal), request.callbackUrl);
  }
  return { id: journal.id, status: summary.status, exitCode: journal.exit_code ?? ExitCode.failed, summary, steps: verifyVerdicts(journal.phases), journal, journalPath };
}

function logSummary(ctx: RunContext, journal: RunJournal, s: VerifySummary): void {
  const line = `verify ${journal.id}: ${s.status} (${describeVerify(s)}; ${(journal.duration_ms / 1000).toFixed(1)} s)`;
  if (s.status === 'ok') ctx.log.info(line);
  else if (s.status === 'drift') ctx.log.warn(line);
  else ctx.log.error(`${line}${journal.failure ? `: ${journal.failure.phase}/${journal.failure.step}: ${journal.failure.message}` : ''}`);
}

/** `4 steps: 1 ok, 1 drift, 1 no check, 1 skipped` (and `, 1 could not be checked`): the summary's words. */
export function describeVerify(s: VerifySummary): string {
  const steps = s.ok + s.drift + s.no_check + s.skipped + s.error;
  return `${steps} step${steps === 1 ? '' : 's'}: ${s.ok} ok, ${s.drift} drift, ${s.no_check} no check, ${s.skipped} skipped${s.error ? `, ${s.error} could not be checked` : ''}`;
}
