// One run of the pipeline for provision, refresh, mode and upgrade: take the run lock, snapshot
// the effective configuration, run the phases, commit state changes only on success, write the
// journal and last_run, release the lock.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { maskSecrets, planOf, type RunContext } from './run/context.js';
import { redactUrl, type Config } from './config/config.js';
import { ConfigError, DataError, ExitCode, RunWaitingError, UsageError, stateFsError, toBootstrapError } from './errors.js';
import type { DeadOwner, LockOwner } from './lock/pid-lock.js';
import { takeOrcLock, type OrcLock } from './lock/orc-lock.js';
import { EnvironmentFileError, phaseEnvironment, runEnvironment, runMarker, type Failure, type RunInfo } from './pipeline/environment.js';
import { resumeRefusal, runPipeline, toFailureRecord, type PipelineResult, type RebootRequest } from './pipeline/pipeline.js';
import { readFileNoFollow } from './state/atomic.js';
import { shapeProblem, type Shape } from './state/shape.js';
import { planRefusal, refusalOf, refusedPrograms, type Plan } from './pipeline/plan.js';
import { checkSyntax, type SyntaxResult } from './pipeline/syntax.js';
import { previewSteps, type StepPreview } from './pipeline/preview.js';
import { effectiveProducts, enabledVersions, findProduct, type EffectiveProduct } from './products.js';
import { writeJsonAtomic } from './state/atomic.js';
import { JournalStore, countSteps, describeCounts, isRunId, journalSchema, newRunId, type PhaseRecord, type RebootRecord, type RunJournal, type StepRecord } from './state/journal.js';
import { factEnvironment, type Facts } from './facts/facts.js';
import { exploreAndStore } from './facts/explorers.js';
import { explorerOptions, exploreNow, sweepLeftovers, withBuiltinFacts } from './facts/collect.js';
import type { PausedRun, StateDoc } from './state/state.js';
import { bootId, sleep, sweepMarked } from './util/process.js';
import { describeChild, runChild } from './util/child.js';
import { resolveProgram } from './util/trust.js';
import { describeChoices } from './util/suggest.js';
import { makeScratchDir } from './util/scratch.js';
import { runCheckup } from './heartbeat/checkup.js';
import { readSecret } from './callback/deliver.js';
import { runCallback } from './callback/payload.js';
import type { Checkup } from './heartbeat/types.js';

export type RunAction = 'provision' | 'refresh' | 'mode' | 'upgrade';

export interface RunRequest {
  action: RunAction;
  /** provision: the products to run (default: those recorded, else all). */
  products?: string[] | undefined;
  /** mode: the new mode. */
  mode?: string | undefined;
  /** upgrade: the product and its new version (default: the version in bootstrap.ini). */
  product?: string | undefined;
  toVersion?: string | undefined;
  /** upgrade: allow a version lower than the one in force. */
  allowDowngrade?: boolean | undefined;
  dryRun?: boolean | undefined;
  /** undefined: fail at once when another run holds the lock; ms (Infinity: forever) to wait. */
  waitMs?: number | undefined;
  /** Bound on the whole run (default: [phases] run_timeout). */
  timeoutMs?: number | undefined;
  /** Recorded in the journal and callback and given to steps as BOOTSTRAP_LABEL (a rollout id). */
  label?: string | undefined;
  callbackUrl?: string | undefined;
  /** Aborts the run (SIGINT/SIGTERM): the step's group is stopped, the run fails with kind signal. */
  signal?: AbortSignal | undefined;
  /** Aborts backouts and error.d too (a second signal). */
  cleanupSignal?: AbortSignal | undefined;
  /** server.resume: continue the run that waits for its reboot, or end it (abandon). */
  resume?: 'continue' | 'abandon' | undefined;
  onStep?: (event: { phase: string; step: string; index: number; total: number }) => void;
}

export interface DryRunReport {
  plan: Plan;
  syntax: SyntaxResult[];
  ok: boolean;
  /** Why a run would refuse to start (the same one-line error), or null. */
  refusal: string | null;
  /** What a run started now would do, step by step (its NAME.if files run); null when refused. */
  preview: StepPreview[] | null;
  /** The facts the preview collected (explorer.d ran; facts.json was not written). */
  facts: Facts | null;
  explorers: StepRecord[];
  /** Where and why the run would fail before or at a step (an explorer, a NAME.if, environment.d), or null. */
  failure: string | null;
}

export interface RunOutcome {
  id: string | null;
  /** rebooting: paused for a reboot a step asked for; nothing: server.resume found no run waiting. */
  status: 'success' | 'failure' | 'running' | 'dry-run' | 'rebooting' | 'nothing';
  exitCode: number;
  journal: RunJournal | null;
  journalPath: string | null;
  dryRun: DryRunReport | null;
}

/** What the run will change, worked out (and validated) before the lock is taken. */
interface Intent {
  products: EffectiveProduct[];
  mode: string;
  modePrevious: string | undefined;
  versionPrevious: string | null | undefined;
  toVersion: string | undefined;
}

export async function performRun(ctx: RunContext, req: RunRequest): Promise<RunOutcome> {
  let request = req;
  const config = ctx.config;
  checkIntent(ctx, config, request);
  // A callback that could not be signed is refused now (78), not sent unsigned later.
  if (ctx.callbacks.target(request.callbackUrl)) readSecret(config.callback.secretFile);
  const baseDir = ctx.phasesDir;
  if (request.dryRun) return dryRun(ctx, config, request);

  await ctx.store.ensureDir();
  await sweepLeftovers(ctx);
  const lock = await ctx.runLock.acquire({
    command: ctx.commandLine,
    waitMs: request.waitMs,
    onTakeOver: (owner) => takeOverFrom(ctx, owner),
    onWait: (owner) => ctx.log.info(`waiting for the run lock: ${owner ? `${owner.command} (pid ${owner.pid}) holds it` : 'another run is taking it'}`),
    onCompromised: (err) => ctx.log.error(`the run lock was lost: ${err.message}`),
  });
  const keep = { snapshot: false };
  let files: RunFiles | null = null;
  let orc: OrcLock | null = null;
  try {
    const state = await ctx.store.read();
    const paused = state.paused_run ?? null;
    // While a run waits for its reboot nothing else runs; the timer's refresh resumes it.
    if (paused && !request.resume) {
      if (request.action !== 'refresh') throw new RunWaitingError(paused);
      request = { ...request, resume: 'continue' };
    }
    if (request.resume && !paused) return { id: null, status: 'nothing', exitCode: ExitCode.ok, journal: null, journalPath: null, dryRun: null };
    if (request.resume === 'continue' && paused!.boot_id === bootId(ctx.env)) throw new RunWaitingError(paused!, true);
    // The id once the lock is ours (ids sort by start), in the record before anything is
    // written: a takeover after a kill from here on knows the run. A resumed run keeps its id.
    const runId = paused && request.resume ? paused.id : newRunId();
    files = { runId, snapshot: join(ctx.stateDir, 'runs', `${runId}.config.json`), changesDir: '', keep, lock };
    await lock.update({ runId, action: paused && request.resume ? paused.action : request.action });
    ctx.log.debug(`run lock ${lock.lock.path} taken for run ${runId}`);
    orc = await takeOrcLock(config.phases.orcLockfile, request.waitMs, (m) => ctx.log.warn(m));
    files.changesDir = await makeChangesDir(ctx.stateDir, runId);
    if (paused && request.resume) return await resumeRun(ctx, config, request, paused, files, baseDir);
    const intent = resolveIntent(config, state, request);
    maskSecrets(ctx, intent.products);
    await writeJsonAtomic(files.snapshot, snapshotOf(config, intent, request, runId), 0o600, { durable: false });
    return await execute(ctx, config, request, intent, files, baseDir);
  } finally {
    // A run paused for a reboot keeps its snapshot (0600): the resume runs with it.
    if (files && !keep.snapshot) await fsp.rm(files.snapshot, { force: true });
    if (files?.changesDir) await fsp.rm(files.changesDir, { recursive: true, force: true });
    await orc?.release();
    await lock.release();
  }
}

/**
 * server.resume: continue the run after the step that asked for the reboot, with the intent of
 * its snapshot (settings changed since are not picked up), or end it as failed (abandon).
 */
async function resumeRun(ctx: RunContext, config: Config, request: RunRequest, paused: PausedRun, files: RunFiles, baseDir: string): Promise<RunOutcome> {
  const journals = new JournalStore(ctx.stateDir);
  const journal = await journals.read(paused.id).catch(() => null);
  const snapshot = await readSnapshot(files.snapshot);
  const saved = typeof snapshot === 'string' ? null : snapshot;
  const abandon = request.resume === 'abandon' || !saved || !journal;
  if (!saved || !journal) ctx.log.error(`run ${paused.id} cannot be resumed: its ${!saved ? `configuration snapshot ${files.snapshot} ${snapshot}` : 'journal is gone'}; it ends as failed`);
  const state = await ctx.store.read();
  const intent = saved?.intent ?? resolveIntent(config, state, { action: 'refresh' });
  const original: RunRequest = { ...request, action: paused.action as RunAction, ...(saved?.request ?? {}), resume: abandon ? 'abandon' : 'continue' };
  const refusal = abandon ? null : resumeRefusal(planOf(ctx), journal!.phases, paused);
  if (refusal) {
    // Nothing ran: the run still waits, with its snapshot, for the phases to be put back or for --abandon.
    files.keep.snapshot = true;
    throw new ConfigError(`run ${paused.id} (${paused.action}) cannot resume: ${refusal}`, 'put the phases back as they were when it paused and run bootstrap server.resume again, or end the run: bootstrap server.resume --abandon');
  }
  if (!abandon) {
    ctx.log.info(`resuming run ${paused.id} (${paused.action}) after the reboot ${paused.phase}/${paused.step} asked for; it keeps the configuration it started with (settings changed since apply at the next run)`);
    // From here on a killed agent leaves the run to be recorded as failed, never resumed twice.
    await ctx.store.update(ctx.commandLine, (s) => {
      if (s.paused_run?.id === paused.id) s.paused_run.resuming = { boot_id: bootId(ctx.env), started_at: new Date().toISOString() };
    });
  } else ctx.log.warn(`abandoning run ${paused.id} (${paused.action}), which waits for a reboot: backouts (${config.phases.backout}) and error.d run`);
  maskSecrets(ctx, intent.products);
  const stub = () => journalStub(ctx, { id: paused.id, action: paused.action, command: ctx.commandLine, status: 'rebooting', startedAt: paused.requested_at, mode: intent.mode, products: enabledVersions(intent.products), label: paused.label });
  return execute(ctx, config, original, intent, files, baseDir, { paused, journal: journal ?? stub() });
}

function checkIntent(ctx: RunContext, config: Config, request: RunRequest): void {
  if (request.label !== undefined && (request.label === '' || request.label.length > 200 || /[\x00-\x1f\x7f]/.test(request.label))) {
    throw new UsageError('--label: one line of 1 to 200 characters, without control characters', 'e.g. --label rollout-42/batch-2');
  }
  for (const p of request.products ?? []) findProduct(config, p);
  if (request.action === 'mode') validateMode(ctx.config, request.mode ?? '');
  if (request.action === 'upgrade') {
    if (!request.product) throw new UsageError('product.upgrade needs PRODUCT');
    const product = findProduct(config, request.product);
    if (!request.toVersion && !product.version) throw new DataError(`${request.product} has no version in bootstrap.ini`, 'pass --to VERSION');
    if (request.toVersion !== undefined && !/^[0-9A-Za-z][0-9A-Za-z.+~_-]*$/.test(request.toVersion)) throw new DataError(`'${request.toVersion}' is not a version`, 'use letters, digits, . + ~ _ -');
  }
}

function resolveIntent(config: Config, state: StateDoc, request: RunRequest): Intent {
  const current = state.mode ?? config.server.defaultMode;
  let products = effectiveProducts(config, state);
  if (request.products?.length) products = products.map((p) => ({ ...p, enabled: request.products!.includes(p.name) }));
  let versionPrevious: string | null | undefined;
  let toVersion: string | undefined;
  if (request.action === 'upgrade') {
    const target = products.find((p) => p.name === request.product)!;
    versionPrevious = target.version;
    toVersion = request.toVersion ?? config.products.get(target.name)!.version!;
    if (versionPrevious && compareVersions(toVersion, versionPrevious) < 0 && !request.allowDowngrade) {
      throw new DataError(
        `product.upgrade ${target.name}: ${toVersion}${request.toVersion ? '' : ' (the version in bootstrap.ini)'} is older than ${versionPrevious}, the version in force: that would be a downgrade`,
        `pass --allow-downgrade to go from ${versionPrevious} to ${toVersion}, or --to a newer version`,
      );
    }
    products = products.map((p) => (p.name === target.name ? { ...p, version: toVersion! } : p));
  }
  return {
    products,
    mode: request.action === 'mode' ? request.mode! : current,
    modePrevious: request.action === 'mode' ? current : undefined,
    versionPrevious,
    toVersion,
  };
}

/**
 * Changes nothing and takes no lock: the plan, its verdict (as a run would judge it), the syntax
 * check, and a preview of the run: the facts are collected (explorer.d runs; facts.json is not
 * written) and each NAME.if runs with the environment its step would get.
 */
async function dryRun(ctx: RunContext, config: Config, request: RunRequest): Promise<RunOutcome> {
  await sweepLeftovers(ctx);
  const plan = planOf(ctx);
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  const syntax = await checkSyntax(plan);
  const preview = refusal ? null : await previewRun(ctx, config, request, plan);
  const ok = syntax.every((s) => s.ok) && refusal === null && preview?.failure == null;
  const exitCode = refusal ? refusal.exitCode : ok ? ExitCode.ok : ExitCode.failed;
  const report: DryRunReport = { plan, syntax, ok, refusal: refusal?.describe() ?? null, preview: preview?.steps ?? null, facts: preview?.facts ?? null, explorers: preview?.explorers ?? [], failure: preview?.failure ?? null };
  return { id: null, status: 'dry-run', exitCode, journal: null, journalPath: null, dryRun: report };
}

interface Preview {
  steps: StepPreview[];
  facts: Facts | null;
  explorers: StepRecord[];
  failure: string | null;
}

async function previewRun(ctx: RunContext, config: Config, request: RunRequest, plan: Plan): Promise<Preview> {
  const intent = resolveIntent(config, await ctx.store.read(), request);
  maskSecrets(ctx, intent.products); // .if files and explorers run: their output is logged
  const runId = newRunId();
  const marker = runMarker(runId);
  // Findable if this agent is killed: the next command removes it and ends what the .if files left.
  const tmp = await makeScratchDir(ctx.stateDir, runId, (dir) => writeJsonAtomic(join(dir, 'config.json'), snapshotOf(config, intent, request, runId), 0o600, { durable: false }));
  try {
    const snapshot = join(tmp, 'config.json');
    const baseEnv = runEnvironment(ctx.env, runInfoOf(ctx, config, request, intent, runId, snapshot));
    const { builtin } = await withBuiltinFacts(ctx, baseEnv);
    const explored = await exploreNow(ctx, plan, baseEnv, marker, builtin, null, request.signal);
    if (explored.failure) return { steps: [], facts: explored.all, explorers: explored.records, failure: explored.failureText };
    Object.assign(baseEnv, factEnvironment(explored.facts, (m) => ctx.log.warn(m)));
    const environment = (phase: string) => phaseEnvironment({ plan, phases: config.phases, log: ctx.log, baseEnv, marker }, phase, { signal: request.signal });
    const steps = await previewSteps({ plan, environment, marker, phases: config.phases, log: ctx.log, signal: request.signal });
    const failed = steps.find((s) => s.verdict === 'fail');
    return { steps, facts: explored.all, explorers: explored.records, failure: failed ? `${failed.phase}/${failed.step}: ${failed.reason}` : null };
  } catch (err) {
    if (err instanceof EnvironmentFileError) return { steps: [], facts: null, explorers: [], failure: err.message };
    throw err;
  } finally {
    await sweepMarked(marker, config.phases.killGraceMs);
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/** Refuses the plan as dry-run and phases.list would (77/78); runs what allow_insecure lets run, loudly. */
function refuseUntrusted(ctx: RunContext, plan: Plan): void {
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  for (const r of plan.refused) if (r.kind === 'insecure') ctx.log.warn(`INSECURE (allow_insecure = true): running ${r.path}, ${r.reason}`);
}

/** The files of one run: its id, its config snapshot, the dir of its steps' BOOTSTRAP_CHANGES. */
interface RunFiles {
  runId: string;
  snapshot: string;
  changesDir: string;
  /** snapshot: keep it when the run ends (it paused for a reboot). */
  keep: { snapshot: boolean };
  /** The run lock, to record that the run waits for its reboot. */
  lock: { update(fields: Record<string, unknown>): Promise<void> };
}

/**
 * The dir of a run's BOOTSTRAP_CHANGES files (one per step, created empty by the launcher) and
 * BOOTSTRAP_REBOOT_FILEs: `runs/<id>.changes` (0700) in the state dir. Not /dev/shm, though a
 * file costs less to create on tmpfs: any local user can fill /dev/shm, and a step's report that
 * cannot be written there would read as "nothing changed, no reboot asked". The state dir's
 * filesystem is one the run needs anyway; what is lost to it being full is detected (see
 * lib/launcher.bash). The files are gone with the run (a takeover removes those of a dead run).
 */
async function makeChangesDir(stateDir: string, runId: string): Promise<string> {
  const dir = join(stateDir, 'runs', `${runId}.changes`);
  await fsp.mkdir(dir, { mode: 0o700 }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw stateFsError(err, `create ${dir}`);
  });
  return dir;
}

const shmDir = '/dev/shm';

/** Removes the changes dirs a dead run of an older agent (they were in /dev/shm) left there. */
async function removeChangesDirs(runId: string): Promise<void> {
  const names = await fsp.readdir(shmDir).catch(() => [] as string[]);
  for (const n of names) if (n.startsWith(`bootstrap-${runId}-`)) await fsp.rm(join(shmDir, n), { recursive: true, force: true });
}

/** A run resumed after its reboot: its pause and its journal so far. */
interface Resumed {
  paused: PausedRun;
  journal: RunJournal;
}

async function execute(ctx: RunContext, config: Config, request: RunRequest, intent: Intent, files: RunFiles, baseDir: string, resumed?: Resumed): Promise<RunOutcome> {
  const { runId, snapshot } = files;
  const started = resumed ? new Date(resumed.journal.started_at) : new Date();
  const log = ctx.log;
  const plan = planOf(ctx);
  refuseUntrusted(ctx, plan);
  // A resumed run's bound starts again with its boot (the reboot took time no step had).
  const deadline = deadlineOf(request, config, Date.now());
  const boots = [...(resumed?.journal.boots ?? []), { boot_id: bootId(ctx.env), started_at: new Date().toISOString() }];
  const reboots: RebootRecord[] = [...(resumed?.journal.reboots ?? [])];
  const abandon = resumed && request.resume === 'abandon';
  if (log.isEnabled('debug')) {
    const phases = plan.phases.filter((p) => p.steps.length > 0);
    const skipped = [...plan.phases, plan.error].reduce((n, p) => n + p.skipped.length, 0);
    log.debug(`plan: ${phases.reduce((n, p) => n + p.steps.length, 0)} steps in ${phases.map((p) => p.phase).join(', ') || 'no phase'}; ${plan.environment.files.length} environment.d files; ${skipped} files skipped (see phases.list); deadline in ${((deadline - Date.now()) / 1000).toFixed(0)} s`);
  }
  log.info(`run ${runId}: ${request.action} on ${config.server.name} (mode ${intent.mode}), phases from ${baseDir}`);
  /** The journal as it stands: `running` until the end, then the outcome. */
  const journalOf = (phases: PhaseRecord[]): RunJournal => {
    const now = new Date();
    return {
      schema: journalSchema,
      id: runId,
      action: request.action,
      command: ctx.commandLine,
      server: config.server.name,
      status: 'running',
      exit_code: null,
      started_at: started.toISOString(),
      finished_at: now.toISOString(),
      duration_ms: now.getTime() - started.getTime(),
      phases_dir: baseDir,
      mode: intent.mode,
      mode_previous: intent.modePrevious ?? null,
      product: request.action === 'upgrade' ? request.product! : null,
      version: intent.toVersion ?? null,
      version_previous: intent.versionPrevious ?? null,
      products: enabledVersions(intent.products),
      callback_url: request.callbackUrl ? redactUrl(request.callbackUrl) : null,
      label: request.label ?? null,
      phases,
      failure: null,
      backouts: [],
      error_steps: [],
      health: null,
      facts: collected.facts,
      explorers: collected.explorers,
      counts: countSteps({ phases }),
      boots,
      reboots,
    };
  };
  const collected: { facts: Facts | null; explorers: StepRecord[] } = { facts: null, explorers: [] };
  const live = liveJournal(new JournalStore(ctx.stateDir), journalOf);
  const baseEnv = runEnvironment(ctx.env, runInfoOf(ctx, config, request, intent, runId, snapshot));
  const marker = runMarker(runId);
  const { builtin, store: factsStore } = await withBuiltinFacts(ctx, baseEnv);
  collected.facts = builtin.facts;
  const signal = request.signal ?? new AbortController().signal;
  const cleanupSignal = request.cleanupSignal ?? new AbortController().signal;
  let result: PipelineResult;
  let health: Checkup | null = null;
  let machineryFailed = false;
  try {
    result = await runPipeline({
      plan,
      baseEnv,
      environment: (phase, cleanup) => phaseEnvironment({ plan, phases: config.phases, log: ctx.log, baseEnv, marker }, phase, cleanup ? { cleanup: cleanupSignal } : { signal, deadline }),
      marker,
      phases: config.phases,
      log,
      signal,
      cleanupSignal,
      deadline,
      changesDir: files.changesDir,
      beforePhases: async (env) => {
        const explored = await exploreAndStore(plan.explorers.steps, builtin, factsStore, explorerOptions(ctx, plan, env, deadline, signal));
        Object.assign(collected, { facts: explored.all, explorers: explored.records });
        Object.assign(baseEnv, factEnvironment(explored.facts, (m) => ctx.log.warn(m)));
        return explored.failure;
      },
      resume: resumed && { after: { phase: resumed.paused.phase, step: resumed.paused.step }, phases: resumed.journal.phases },
      abandon: abandon ? { phase: resumed.paused.phase, step: resumed.paused.step, kind: 'reboot', exitCode: null, message: `abandoned while it waited for the reboot it asked for (${resumed.paused.reason}): server.resume --abandon` } : undefined,
      onReboot: (at, phases) => pauseForReboot(ctx, config, request, files, { at, reboots, boots, journal: () => ({ ...journalOf(withPending(plan, phases)), status: 'rebooting', exit_code: ExitCode.ok }), live, previous: resumed?.paused }),
      onStep: request.onStep,
      afterPhases: config.phases.healthGate ? () => healthGate(ctx, config, request.signal, (c) => (health = c)) : undefined,
      onProgress: live.update,
    });
  } catch (err) {
    // The run machinery itself failed (no bash, no fork, a bug): still journaled and reported.
    machineryFailed = true;
    const message = `the run could not go on: ${toBootstrapError(err).message}`;
    log.error(message);
    result = { phases: [], failure: toFailureRecord({ phase: 'agent', step: '', kind: 'exit', exitCode: null, message }), backouts: [], errorSteps: [], paused: null };
  } finally {
    // At the end of a run nothing a step started is left running (setsid and double forks too).
    const left = await sweepMarked(marker, config.phases.killGraceMs);
    if (left.length) log.warn(`ended ${left.length} process(es) the run's steps left running (pids ${left.slice(0, 10).join(', ')}${left.length > 10 ? ', …' : ''})`);
  }

  await live.done();
  if (result.paused) {
    const journal = { ...journalOf(withPending(plan, result.phases)), status: 'rebooting' as const, exit_code: ExitCode.ok };
    log.warn(`run ${runId}: paused for a reboot (${result.paused.phase}/${result.paused.step}: ${result.paused.reason}); bootstrap server.resume continues it after the reboot`);
    return { id: runId, status: 'rebooting', exitCode: ExitCode.ok, journal, journalPath: join(ctx.stateDir, 'runs', `${runId}.json`), dryRun: null };
  }
  const success = result.failure === null;
  const exitCode = success ? ExitCode.ok : machineryFailed ? ExitCode.internal : ExitCode.failed;
  // The versions in force after the run: a failed upgrade leaves the old one (the target is in
  // the journal's version and the summary's upgrade).
  const inForce = success || request.action !== 'upgrade' ? enabledVersions(intent.products) : { ...enabledVersions(intent.products), [request.product!]: intent.versionPrevious ?? null };
  const journal: RunJournal = { ...journalOf(result.phases), status: success ? 'success' : 'failure', exit_code: exitCode, products: inForce, failure: result.failure, backouts: result.backouts, error_steps: result.errorSteps, health };
  const journalPath = await recordRun(ctx, config, request, intent, journal);
  const summary = `run ${runId}: ${journal.status} (${describeCounts(countSteps(journal))}; ${(journal.duration_ms / 1000).toFixed(1)} s); journal ${journalPath ?? '(not written)'}`;
  if (journal.status === 'success') log.info(summary);
  else log.error(`${summary}; failed at ${journal.failure!.phase}/${journal.failure!.step}: ${journal.failure!.message}`);
  return { id: runId, status: journal.status, exitCode: journal.exit_code ?? ExitCode.internal, journal, journalPath, dryRun: null };
}

/**
 * Records the outcome so that nothing contradicts anything else, even across a crash: the
 * callback is queued first but held (an agent killed from here on still reports), then the
 * journal, then state.json (commit and last_run); only then is the callback released. If the
 * journal or state cannot be written, the run becomes a failure with that exit code, and the
 * held callback says so. A takeover of a killed agent settles a held callback by what state.json
 * says was committed (takeOverFrom).
 */
async function recordRun(ctx: RunContext, config: Config, request: RunRequest, intent: Intent, journal: RunJournal): Promise<string | null> {
  const held = await ctx.callbacks.hold(runCallback(journal), request.callbackUrl);
  const journals = new JournalStore(ctx.stateDir);
  let journalPath: string | null = null;
  try {
    journalPath = await journals.write(journal);
    await ctx.store.update(ctx.commandLine, (s) => {
      if (journal.status === 'success') commit(s, request, intent, new Date(journal.finished_at));
      s.last_run = lastRunOf(journal);
      if (s.paused_run?.id === journal.id) s.paused_run = null; // a resumed (or abandoned) run is over
    });
  } catch (err) {
    const error = toBootstrapError(err);
    ctx.log.error(`the outcome of run ${journal.id} could not be recorded: ${error.describe()}`);
    Object.assign(journal, {
      status: 'failure',
      exit_code: error.exitCode,
      failure: journal.failure ?? { phase: 'agent', step: '', kind: 'exit', exit_code: null, message: `nothing was committed: ${error.message}` },
    });
    if (journalPath) await journals.write(journal).catch(() => {});
  }
  if (held) await ctx.callbacks.release(held, journal.id, runCallback(journal));
  await journals.prune(config.phases.keepRuns, journal.id).catch((err) => ctx.log.warn(`old journals not pruned: ${(err as Error).message}`));
  if (held) await ctx.callbacks.deliver();
  return journalPath;
}

/** last_run of a finished run's journal. */
function lastRunOf(journal: RunJournal): StateDoc['last_run'] {
  const f = journal.failure;
  return {
    id: journal.id,
    action: journal.action,
    status: journal.status === 'success' ? 'success' : 'failure',
    exit_code: journal.exit_code ?? ExitCode.failed,
    started_at: journal.started_at,
    finished_at: journal.finished_at,
    duration_ms: journal.duration_ms,
    failure: f && { phase: f.phase, step: f.step, kind: f.kind, exit_code: f.exit_code },
  };
}

/**
 * The health gate: after migration.d, the checkup is repeated until every check is healthy or
 * health_timeout passes; still unhealthy then fails the run with kind `heartbeat`.
 */
async function healthGate(ctx: RunContext, config: Config, signal: AbortSignal | undefined, keep: (c: Checkup) => void): Promise<Failure | null> {
  const deadline = Date.now() + config.phases.healthTimeoutMs;
  const specs = [...config.heartbeats.values()];
  for (let attempt = 1; ; attempt++) {
    const checkup = await runCheckup(specs, ctx.env, ctx.log.masker);
    keep(checkup);
    if (checkup.healthy) {
      ctx.log.info(`health gate: all ${specs.length} checks healthy${attempt > 1 ? ` after ${attempt} checkups` : ''}`);
      return null;
    }
    const bad = checkup.results.filter((r) => !r.healthy);
    const detail = bad.map((r) => `${r.name}: ${r.detail}`).join('; ');
    if (Date.now() + 1000 >= deadline || signal?.aborted) {
      return { phase: 'health', step: bad.map((r) => r.name).join(','), kind: 'heartbeat', exitCode: null, message: `unhealthy after ${(config.phases.healthTimeoutMs / 1000).toFixed(0)} s: ${detail}` };
    }
    ctx.log.info(`health gate: waiting (${detail})`);
    await sleep(1000);
  }
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

/**
 * The 0600 file behind BOOTSTRAP_CONFIG_JSON: the whole effective configuration, secrets
 * included; and, under `resume`, what a run paused for a reboot resumes with.
 */
function snapshotOf(config: Config, intent: Intent, request: RunRequest, runId: string) {
  return {
    run_id: runId,
    action: request.action,
    server: config.server.name,
    mode: intent.mode,
    products: Object.fromEntries(
      intent.products.map((p) => [p.name, { enabled: p.enabled, version: p.version, settings: Object.fromEntries(p.settings.map((s) => [s.name, s.value])) }]),
    ),
    resume: {
      request: { action: request.action, product: request.product, products: request.products, toVersion: request.toVersion, label: request.label, callbackUrl: request.callbackUrl },
      intent,
    },
  };
}

// What a resume reads of a paused run's snapshot (state/shape.ts): the request and its intent.
const settingShape: Shape = { product: 'string', name: 'string', type: 'string', secret: 'boolean', value: 'string|number|boolean?', origin: 'string' };
const snapshotShape: Shape = {
  resume: {
    request: { action: 'string', product: 'string?', products: ['string', '?'], toVersion: 'string?', label: 'string?', callbackUrl: 'string?' },
    intent: {
      products: [{ name: 'string', version: 'string?', enabled: 'boolean', settings: [settingShape] }],
      mode: 'string',
      modePrevious: 'string?',
      versionPrevious: 'string?',
      toVersion: 'string?',
    },
  },
};

/** A paused run's snapshot, or why it cannot be used (`is gone`, `is broken: …`). */
async function readSnapshot(file: string): Promise<{ request: Partial<RunRequest>; intent: Intent } | string> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFileNoFollow(file, 16 * 1024 * 1024));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is gone' : `cannot be read (${(err as Error).message})`;
  }
  const problem = shapeProblem(doc, snapshotShape);
  if (problem) return `is broken: ${problem}`;
  const { request, intent } = (doc as { resume: { request: Partial<RunRequest>; intent: Intent } }).resume;
  return { request, intent };
}

/**
 * The journal of a run whose own journal is gone (its agent died before writing one, or it
 * was lost while the run waited for its reboot): enough to record the run as failed.
 */
function journalStub(ctx: RunContext, o: { id: string; action: string; command: string; status: RunJournal['status']; startedAt: string; mode: string; products: Record<string, string | null>; label?: string | null }): RunJournal {
  const now = new Date();
  return {
    schema: journalSchema, id: o.id, action: o.action, command: o.command, server: ctx.config.server.name, status: o.status, exit_code: o.status === 'failure' ? ExitCode.failed : null,
    started_at: o.startedAt, finished_at: now.toISOString(), duration_ms: now.getTime() - Date.parse(o.startedAt), phases_dir: ctx.phasesDir, mode: o.mode, mode_previous: null,
    product: null, version: null, version_previous: null, products: o.products, callback_url: null, label: o.label ?? null,
    phases: [], failure: null, backouts: [], error_steps: [], health: null,
  };
}

/** The phases of a paused run's journal: those run so far, then the rest as pending. */
function withPending(plan: Plan, phases: PhaseRecord[]): PhaseRecord[] {
  const rest = plan.phases.slice(phases.length).map((p) => ({ phase: p.phase, dir: p.dir, status: p.exists ? ('pending' as const) : ('missing' as const), steps: [], duration_ms: 0 }));
  return [...phases, ...rest];
}

/**
 * A step asked for a reboot (and its check passed): past max_reboots the run fails (kind
 * reboot). Otherwise the pause is recorded so that nothing contradicts anything else across a
 * crash — callback held, journal `rebooting`, state.json's paused_run, callback released — the
 * snapshot is kept, the lock record says the run waits, and reboot_command runs. If that fails,
 * the run fails (kind reboot); its final record clears the pause.
 */
async function pauseForReboot(
  ctx: RunContext,
  config: Config,
  request: RunRequest,
  files: RunFiles,
  o: { at: RebootRequest; reboots: RebootRecord[]; boots: unknown[]; journal: () => RunJournal; live: { stop(): Promise<unknown> }; previous: PausedRun | undefined },
): Promise<Failure | null> {
  const { at } = o;
  const count = (o.previous?.reboots ?? 0) + 1;
  const where = { phase: at.phase, step: at.step };
  if (count > config.phases.maxReboots) {
    return { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but this run already rebooted ${count - 1} time${count === 2 ? '' : 's'} ([phases] max_reboots = ${config.phases.maxReboots})` };
  }
  const requestedAt = new Date().toISOString();
  o.reboots.push({ ...where, reason: at.reason, requested_at: requestedAt });
  await o.live.stop();
  const journal = o.journal();
  const paused: PausedRun = { id: files.runId, action: journal.action, label: journal.label ?? null, ...where, reason: at.reason, requested_at: requestedAt, boot_id: bootId(ctx.env), reboots: count, resuming: null };
  const held = await ctx.callbacks.hold(runCallback(journal), request.callbackUrl, `${files.runId}.reboot-${count}`);
  await new JournalStore(ctx.stateDir).write(journal);
  await ctx.store.update(ctx.commandLine, (s) => {
    s.paused_run = paused;
  });
  files.keep.snapshot = true;
  if (held) await ctx.callbacks.release(held, journal.id);
  if (held) await ctx.callbacks.deliver();
  await files.lock.update({ waiting: 'reboot' });
  const argv = config.phases.rebootCommand;
  ctx.log.warn(`run ${files.runId} paused: ${at.phase}/${at.step} asked for a reboot (${at.reason}); running ${argv.join(' ')}`);
  const failed = await runRebootCommand(argv, ctx, config);
  if (!failed) return null;
  files.keep.snapshot = false;
  return { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but the reboot command failed: ${argv.join(' ')}: ${failed}` };
}

/**
 * Runs [phases] reboot_command as a step is run: no shell, bounded by script_timeout (its whole
 * process tree, TERM then KILL), over when it exits (what it leaves running is ended then, so a
 * daemon holding its output cannot hold the run), its output to the log; and only by the path
 * the trust rules of steps accept (util/trust), judged again now. Resolves to why it failed, or null.
 */
async function runRebootCommand(argv: string[], ctx: RunContext, config: Config): Promise<string | null> {
  const file = resolveProgram(argv[0]!, ctx.env);
  if (!file) return `cannot run it: ${argv[0]} not found${argv[0]!.includes('/') ? '' : ' on PATH'}`;
  const refused = refusedPrograms([{ key: '[phases] reboot_command', argv }], ctx.env);
  const refusal = refusalOf(refused, config.phases.allowInsecure);
  if (refusal) return refusal.message;
  const timeoutMs = config.phases.scriptTimeoutMs;
  const r = await runChild({ file, args: argv.slice(1), argv0: argv[0], env: ctx.env, timeoutMs, killGraceMs: config.phases.killGraceMs, masker: ctx.log.masker, onLine: (line) => ctx.log.step('reboot', line) });
  return describeChild(r, timeoutMs);
}

/**
 * A dead holder's run (called once, by the one process that takes the lock over): end whatever
 * it left running, remove its snapshot (secrets), and settle its record: committed runs keep
 * their outcome (a held callback is released); others are recorded as failed, with a callback,
 * so no run goes unreported and none is reported twice.
 */
async function takeOverFrom(ctx: RunContext, owner: DeadOwner): Promise<void> {
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
    journalStub(ctx, { id: runId, action: owner.action ?? 'unknown', command: owner.command, status: 'failure', startedAt: owner.startedAt, mode: state.mode ?? config.server.defaultMode, products: enabledVersions(effectiveProducts(config, state)) });
  // Not committed: whatever its journal said, the run did not take effect.
  if (journal.status !== 'failure' || !journal.failure || resuming) {
    Object.assign(journal, { status: 'failure', exit_code: ExitCode.failed, failure: { phase: 'agent', step: '', kind: 'signal', exit_code: null, message } });
  }
  await journals.write(journal);
  await ctx.store.update(ctx.commandLine, (s) => {
    s.last_run = lastRunOf(journal);
    if (s.paused_run?.id === runId) s.paused_run = null;
  });
  await fsp.rm(join(ctx.stateDir, 'runs', `${runId}.config.json`), { force: true });
  if (held.length) for (const file of held) await ctx.callbacks.release(file, runId, runCallback(journal));
  else await ctx.callbacks.queue(runCallback(journal));
  ctx.log.warn(`recorded run ${runId} as failed: ${journal.failure!.message}`);
}

/** Checks that MODE is one of `[server] modes`. */
export function validateMode(config: Config, mode: string): void {
  const { modes } = config.server;
  if (!modes.includes(mode)) throw new DataError(`unknown mode '${mode}'`, describeChoices(mode, modes).replace(/^known:/, 'modes are:'));
}

/**
 * Orders versions as people read them: digit runs numerically (2.10 > 2.9), letter runs by
 * bytes, a longer version after its prefix (1.4.1 > 1.4); `~` sorts before anything (1.0~rc1 <
 * 1.0), as in Debian.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/(~)|[.+_-]/).filter((p) => p !== undefined && p !== '').flatMap((p) => p.match(/~|\d+|[^\d~]+/g) ?? []);
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === q) continue;
    if (p === '~' || q === undefined) return p === '~' ? -1 : 1;
    if (q === '~' || p === undefined) return q === '~' ? 1 : -1;
    const np = /^\d+$/.test(p);
    const nq = /^\d+$/.test(q);
    if (np && nq) return BigInt(p) < BigInt(q) ? -1 : BigInt(p) > BigInt(q) ? 1 : 0;
    if (np !== nq) return np ? 1 : -1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/** What steps learn of the run from the environment (BOOTSTRAP_ACTION, _MODE, _VERSION …). */
function runInfoOf(ctx: RunContext, config: Config, request: RunRequest, intent: Intent, runId: string, snapshot: string): RunInfo {
  return {
    action: request.action,
    runId,
    server: config.server.name,
    mode: intent.mode,
    modePrevious: intent.modePrevious,
    product: request.action === 'upgrade' ? request.product : undefined,
    version: intent.toVersion,
    versionPrevious: intent.versionPrevious,
    products: intent.products,
    configJson: snapshot,
    stateDir: ctx.stateDir,
    label: request.label,
  };
}

function deadlineOf(request: RunRequest, config: Config, from: number): number {
  return from + (request.timeoutMs ?? config.phases.runTimeoutMs);
}

/**
 * The journal of a running run, so `runs.show` and `runs.list` see it: written at the start, then
 * at most about once a second as steps start (not durable: the final journal is), in order.
 */
function liveJournal(journals: JournalStore, journalOf: (phases: PhaseRecord[]) => RunJournal) {
  let last = 0;
  let writes: Promise<unknown> = Promise.resolve();
  const write = (phases: PhaseRecord[], current: RunJournal['current']) => {
    last = Date.now();
    const journal = { ...journalOf(phases.map((p) => ({ ...p, steps: [...p.steps] }))), current };
    writes = writes.then(() => journals.write(journal, { durable: false })).catch(() => {});
  };
  write([], null);
  // Throttled with a trailing write: what happened during the last second is written then.
  let pending: [PhaseRecord[], RunJournal['current']] | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  return {
    update: (phases: PhaseRecord[], current: { phase: string; step: string } | null) => {
      if (stopped) return;
      pending = [phases, current && { ...current, started_at: new Date().toISOString() }];
      if (timer) return;
      timer = setTimeout(() => {
        timer = null;
        if (pending) write(...pending);
        pending = null;
      }, Math.max(0, last + 1000 - Date.now()));
      timer.unref();
    },
    done: () => {
      if (timer) clearTimeout(timer);
      return writes;
    },
    /** No live write after this one settles (the journal is written otherwise from now on). */
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      return writes;
    },
  };
}
