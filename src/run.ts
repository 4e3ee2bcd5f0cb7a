// One run of the pipeline for provision, refresh, mode and upgrade: take the run lock, snapshot
// the effective configuration, run the phases, commit state changes only on success, write the
// journal and last_run, release the lock.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Agent } from './agent.js';
import { redactUrl, type Config } from './config/config.js';
import { DataError, ExitCode, UsageError, toBootstrapError } from './errors.js';
import type { DeadOwner, LockOwner } from './lock/pid-lock.js';
import { takeOrcLock, type OrcLock } from './lock/orc-lock.js';
import { runEnvironment, runMarker, sourceEnvironmentFiles, type Failure } from './pipeline/environment.js';
import { runPipeline, toFailureRecord, type PipelineResult } from './pipeline/pipeline.js';
import type { Plan } from './pipeline/plan.js';
import { checkSyntax, type SyntaxResult } from './pipeline/syntax.js';
import { effectiveProducts, enabledVersions, findProduct, type EffectiveProduct } from './products.js';
import { writeJsonAtomic } from './state/atomic.js';
import { JournalStore, isRunId, journalSchema, newRunId, type PhaseRecord, type RunJournal } from './state/journal.js';
import type { StateDoc } from './state/state.js';
import { sleep, sweepMarked } from './util/process.js';
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
  onStep?: (event: { phase: string; step: string; index: number; total: number }) => void;
}

export interface DryRunReport {
  plan: Plan;
  syntax: SyntaxResult[];
  ok: boolean;
  /** Why a run would refuse to start (the same one-line error), or null. */
  refusal: string | null;
}

export interface RunOutcome {
  id: string | null;
  status: 'success' | 'failure' | 'running' | 'dry-run';
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

export async function performRun(agent: Agent, request: RunRequest): Promise<RunOutcome> {
  const config = agent.config();
  checkIntent(agent, config, request);
  // A callback that could not be signed is refused now (78), not sent unsigned later.
  if (agent.callbackTarget(request.callbackUrl)) readSecret(config.callback.secretFile);
  const baseDir = agent.phasesDir;
  if (request.dryRun) return dryRun(agent);

  await agent.store.ensureDir();
  const lock = await agent.runLock.acquire({
    command: agent.commandLine,
    waitMs: request.waitMs,
    onTakeOver: (owner) => takeOverFrom(agent, owner),
    onWait: (owner) => agent.log.info(`waiting for the run lock: ${owner ? `${owner.command} (pid ${owner.pid}) holds it` : 'another run is taking it'}`),
    onCompromised: (err) => agent.log.error(`the run lock was lost: ${err.message}`),
  });
  // The id once the lock is ours (ids sort by start), in the record before anything is written:
  // a takeover after a kill from here on knows the run.
  const runId = newRunId();
  const snapshot = join(agent.stateDir, 'runs', `${runId}.config.json`);
  let orc: OrcLock | null = null;
  try {
    await lock.update({ runId, action: request.action });
    agent.log.debug(`run lock ${lock.lock.path} taken for run ${runId}`);
    orc = await takeOrcLock(config.phases.orcLockfile, request.waitMs, (m) => agent.log.warn(m));
    const state = await agent.store.read();
    const intent = resolveIntent(config, state, request);
    agent.log.addSecrets(intent.products.flatMap((p) => p.settings.filter((s) => s.secret && typeof s.value === 'string').map((s) => String(s.value))));
    await writeJsonAtomic(snapshot, snapshotOf(config, intent, request.action, runId), 0o600, { durable: false });
    return await execute(agent, config, request, intent, runId, snapshot, baseDir);
  } finally {
    await fsp.rm(snapshot, { force: true });
    await orc?.release();
    await lock.release();
  }
}

function checkIntent(agent: Agent, config: Config, request: RunRequest): void {
  if (request.label !== undefined && (request.label === '' || request.label.length > 200 || /[\x00-\x1f\x7f]/.test(request.label))) {
    throw new UsageError('--label: one line of 1 to 200 characters, without control characters', 'e.g. --label rollout-42/batch-2');
  }
  for (const p of request.products ?? []) findProduct(config, p);
  if (request.action === 'mode') agent.validateMode(request.mode ?? '');
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

/** Changes nothing: the plan, its verdict (as a run would judge it) and the syntax check. */
async function dryRun(agent: Agent): Promise<RunOutcome> {
  const plan = agent.phasesList();
  const refusal = agent.planRefusal(plan);
  const syntax = await checkSyntax(plan);
  const ok = syntax.every((s) => s.ok) && refusal === null;
  const exitCode = refusal ? refusal.exitCode : ok ? ExitCode.ok : ExitCode.failed;
  return { id: null, status: 'dry-run', exitCode, journal: null, journalPath: null, dryRun: { plan, syntax, ok, refusal: refusal?.describe() ?? null } };
}

/** Refuses the plan as dry-run and phases.list would (77/78); runs what allow_insecure lets run, loudly. */
function refuseUntrusted(agent: Agent, plan: Plan): void {
  const refusal = agent.planRefusal(plan);
  if (refusal) throw refusal;
  for (const r of plan.refused) if (r.kind === 'insecure') agent.log.warn(`INSECURE (allow_insecure = true): running ${r.path}, ${r.reason}`);
}

async function execute(agent: Agent, config: Config, request: RunRequest, intent: Intent, runId: string, snapshot: string, baseDir: string): Promise<RunOutcome> {
  const started = new Date();
  const log = agent.log;
  const plan = agent.phasesList();
  refuseUntrusted(agent, plan);
  const deadline = deadlineOf(request, config, started.getTime());
  if (log.isEnabled('debug')) {
    const phases = plan.phases.filter((p) => p.steps.length > 0);
    const skipped = [...plan.phases, plan.error].reduce((n, p) => n + p.skipped.length, 0);
    log.debug(`plan: ${phases.reduce((n, p) => n + p.steps.length, 0)} steps in ${phases.map((p) => p.phase).join(', ') || 'no phase'}; ${plan.environment.files.length} environment.d files; ${skipped} files skipped (see phases.list); deadline in ${((deadline - Date.now()) / 1000).toFixed(0)} s`);
  }
  const facts = {
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
    stateDir: agent.stateDir,
    label: request.label,
  };
  log.info(`run ${runId}: ${request.action} on ${config.server.name} (mode ${intent.mode}), phases from ${baseDir}`);
  /** The journal as it stands: `running` until the end, then the outcome. */
  const journalOf = (phases: PhaseRecord[]): RunJournal => {
    const now = new Date();
    return {
      schema: journalSchema,
      id: runId,
      action: request.action,
      command: agent.commandLine,
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
    };
  };
  const live = liveJournal(new JournalStore(agent.stateDir), journalOf);
  const baseEnv = runEnvironment(agent.env, facts);
  const marker = runMarker(runId);
  const signal = request.signal ?? new AbortController().signal;
  const cleanupSignal = request.cleanupSignal ?? new AbortController().signal;
  let result: PipelineResult;
  let health: Checkup | null = null;
  let machineryFailed = false;
  try {
    result = await runPipeline({
      plan,
      baseEnv,
      environment: (phase, cleanup) =>
        sourceEnvironmentFiles(plan.environment.files, { ...baseEnv, BOOTSTRAP_PHASE: phase }, baseDir, {
          timeoutMs: cleanup ? config.phases.cleanupTimeoutMs : Math.max(0, Math.min(config.phases.scriptTimeoutMs, deadline - Date.now())),
          killGraceMs: config.phases.killGraceMs,
          signal: cleanup ? cleanupSignal : signal,
          onLine: (line) => log.step(`${phase}/environment.d`, line),
          marker,
        }),
      marker,
      phases: config.phases,
      log,
      signal,
      cleanupSignal,
      deadline,
      onStep: request.onStep,
      afterPhases: config.phases.healthGate ? () => healthGate(agent, config, request.signal, (c) => (health = c)) : undefined,
      onProgress: live.update,
    });
  } catch (err) {
    // The run machinery itself failed (no bash, no fork, a bug): still journaled and reported.
    machineryFailed = true;
    const message = `the run could not go on: ${toBootstrapError(err).message}`;
    log.error(message);
    result = { phases: [], failure: toFailureRecord({ phase: 'agent', step: '', kind: 'exit', exitCode: null, message }), backouts: [], errorSteps: [] };
  } finally {
    // At the end of a run nothing a step started is left running (setsid and double forks too).
    const left = await sweepMarked(marker, config.phases.killGraceMs);
    if (left.length) log.warn(`ended ${left.length} process(es) the run's steps left running (pids ${left.slice(0, 10).join(', ')}${left.length > 10 ? ', …' : ''})`);
  }

  const success = result.failure === null;
  const exitCode = success ? ExitCode.ok : machineryFailed ? ExitCode.internal : ExitCode.failed;
  await live.done();
  // The versions in force after the run: a failed upgrade leaves the old one (the target is in
  // the journal's version and the summary's upgrade).
  const inForce = success || request.action !== 'upgrade' ? enabledVersions(intent.products) : { ...enabledVersions(intent.products), [request.product!]: intent.versionPrevious ?? null };
  const journal: RunJournal = { ...journalOf(result.phases), status: success ? 'success' : 'failure', exit_code: exitCode, products: inForce, failure: result.failure, backouts: result.backouts, error_steps: result.errorSteps, health };
  const journalPath = await recordRun(agent, config, request, intent, journal);
  const steps = result.phases.reduce((n, p) => n + p.steps.length, 0);
  const summary = `run ${runId}: ${journal.status} (${steps} steps, ${(journal.duration_ms / 1000).toFixed(1)} s); journal ${journalPath ?? '(not written)'}`;
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
async function recordRun(agent: Agent, config: Config, request: RunRequest, intent: Intent, journal: RunJournal): Promise<string | null> {
  const held = await agent.queueCallbackSafely(runCallback(journal), request.callbackUrl, { held: true });
  const journals = new JournalStore(agent.stateDir);
  let journalPath: string | null = null;
  try {
    journalPath = await journals.write(journal);
    await agent.store.update(agent.commandLine, (s) => {
      if (journal.status === 'success') commit(s, request, intent, new Date(journal.finished_at));
      s.last_run = lastRunOf(journal);
    });
  } catch (err) {
    const error = toBootstrapError(err);
    agent.log.error(`the outcome of run ${journal.id} could not be recorded: ${error.describe()}`);
    Object.assign(journal, {
      status: 'failure',
      exit_code: error.exitCode,
      failure: journal.failure ?? { phase: 'agent', step: '', kind: 'exit', exit_code: null, message: `nothing was committed: ${error.message}` },
    });
    if (journalPath) await journals.write(journal).catch(() => {});
  }
  if (held) await agent.releaseCallback(held, runCallback(journal)).catch((err) => agent.log.error(`callback ${journal.id} not released: ${(err as Error).message}`));
  await journals.prune(config.phases.keepRuns, journal.id).catch((err) => agent.log.warn(`old journals not pruned: ${(err as Error).message}`));
  if (held) await agent.deliverCallbacks();
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
async function healthGate(agent: Agent, config: Config, signal: AbortSignal | undefined, keep: (c: Checkup) => void): Promise<Failure | null> {
  const deadline = Date.now() + config.phases.healthTimeoutMs;
  const specs = [...config.heartbeats.values()];
  for (let attempt = 1; ; attempt++) {
    const checkup = await runCheckup(specs);
    keep(checkup);
    if (checkup.healthy) {
      agent.log.info(`health gate: all ${specs.length} checks healthy${attempt > 1 ? ` after ${attempt} checkups` : ''}`);
      return null;
    }
    const bad = checkup.results.filter((r) => !r.healthy);
    const detail = bad.map((r) => `${r.name}: ${r.detail}`).join('; ');
    if (Date.now() + 1000 >= deadline || signal?.aborted) {
      return { phase: 'health', step: bad.map((r) => r.name).join(','), kind: 'heartbeat', exitCode: null, message: `unhealthy after ${(config.phases.healthTimeoutMs / 1000).toFixed(0)} s: ${detail}` };
    }
    agent.log.info(`health gate: waiting (${detail})`);
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

/** The 0600 file behind BOOTSTRAP_CONFIG_JSON: the whole effective configuration, secrets included. */
function snapshotOf(config: Config, intent: Intent, action: RunAction, runId: string) {
  return {
    run_id: runId,
    action,
    server: config.server.name,
    mode: intent.mode,
    products: Object.fromEntries(
      intent.products.map((p) => [p.name, { enabled: p.enabled, version: p.version, settings: Object.fromEntries(p.settings.map((s) => [s.name, s.value])) }]),
    ),
  };
}

/**
 * A dead holder's run (called once, by the one process that takes the lock over): end whatever
 * it left running, remove its snapshot (secrets), and settle its record: committed runs keep
 * their outcome (a held callback is released); others are recorded as failed, with a callback,
 * so no run goes unreported and none is reported twice.
 */
async function takeOverFrom(agent: Agent, owner: DeadOwner): Promise<void> {
  agent.log.warn(`taking over the run lock from ${owner.command} (pid ${owner.pid}, started ${owner.startedAt}), which is no longer running`);
  const runId = owner.runId;
  if (runId !== undefined && !isRunId(runId)) {
    agent.log.warn(`the lock record names run '${String(runId).slice(0, 40)}', which is not a run id; ignored`);
  }
  const valid = runId !== undefined && isRunId(runId) ? runId : null;
  if (valid && owner.sameBoot) {
    const left = await sweepMarked(runMarker(valid), 1000);
    if (left.length) agent.log.warn(`ended ${left.length} process(es) left running by the dead run ${valid}`);
  }
  await new JournalStore(agent.stateDir).prune(agent.config().phases.keepRuns, null).catch((err) => agent.log.error(`could not remove config snapshots: ${(err as Error).message}`));
  if (valid) await settleDeadRun(agent, owner, valid).catch((err) => agent.log.error(`could not record the dead run ${valid}: ${(err as Error).message}`));
}

async function settleDeadRun(agent: Agent, owner: LockOwner, runId: string): Promise<void> {
  const journals = new JournalStore(agent.stateDir);
  const state = await agent.store.read();
  const held = await agent.heldCallbacks(runId);
  if (state.last_run?.id === runId) {
    for (const file of held) await agent.releaseCallback(file);
    return; // it committed its outcome; only the lock was left
  }
  const config = agent.config();
  const now = new Date();
  const message = `the agent (pid ${owner.pid}) died during the run, before recording its outcome (killed?); found by the next run`;
  const previous = await journals.read(runId).catch(() => null);
  const journal: RunJournal = previous ?? {
    schema: journalSchema,
    id: runId,
    action: owner.action ?? 'unknown',
    command: owner.command,
    server: config.server.name,
    status: 'failure',
    exit_code: ExitCode.failed,
    started_at: owner.startedAt,
    finished_at: now.toISOString(),
    duration_ms: now.getTime() - Date.parse(owner.startedAt),
    phases_dir: agent.phasesDir,
    mode: state.mode ?? config.server.defaultMode,
    mode_previous: null,
    product: null,
    version: null,
    version_previous: null,
    products: enabledVersions(effectiveProducts(config, state)),
    callback_url: null,
    phases: [],
    failure: null,
    backouts: [],
    error_steps: [],
    health: null,
  };
  // Not committed: whatever its journal said, the run did not take effect.
  if (journal.status !== 'failure' || !journal.failure) {
    Object.assign(journal, { status: 'failure', exit_code: ExitCode.failed, failure: { phase: 'agent', step: '', kind: 'signal', exit_code: null, message } });
  }
  await journals.write(journal);
  await agent.store.update(agent.commandLine, (s) => {
    s.last_run = lastRunOf(journal);
  });
  if (held.length) for (const file of held) await agent.releaseCallback(file, runCallback(journal));
  else await agent.queueCallbackSafely(runCallback(journal));
  agent.log.warn(`recorded run ${runId} as failed: ${journal.failure!.message}`);
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
  return {
    update: (phases: PhaseRecord[], current: { phase: string; step: string } | null) => {
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
  };
}
