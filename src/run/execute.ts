// Executing a run once its lock is held: the plan (refused when untrusted), the run's
// environment, the facts, the pipeline (phases, a pause for a reboot, the health gate). It
// returns whether the run paused for a reboot (its pause is recorded: the snapshot is kept) or
// the journal of its outcome, which perform.ts hands to record.ts, with where the run spent its
// time besides its files (timings: explorers, environment.d, the health gate). Nothing a step
// started outlives it.

import { join } from 'node:path';
import { redactUrl } from '../config/config.js';
import { ExitCode, toBootstrapError } from '../errors.js';
import { explorerOptions, withBuiltinFacts } from './facts.js';
import { exploreAndStore } from '../facts/explorers.js';
import { factEnvironment, type Facts, type FactsStore } from '../facts/facts.js';
import type { Checkup } from '../heartbeat/types.js';
import { phaseEnvironment, runEnvironment, runMarker } from '../pipeline/environment.js';
import { toFailureRecord, type Failure } from '../pipeline/step-result.js';
import { runPipeline, type PipelineResult, type RebootRequest } from '../pipeline/pipeline.js';
import { planRefusal, type Plan } from '../pipeline/plan.js';
import { enabledVersions } from '../products.js';
import { JournalStore, type PhaseRecord, type RunJournal, type RunTimings } from '../state/journal.js';
import { bootId, describeProcesses, sweepMarkedNamed } from '../util/process.js';
import { planOf, type RunContext } from './context.js';
import { healthGate } from './health-gate.js';
import { addTiming, journalOf, startTimings, withPending, type JournalHead, type JournalRun } from './journal-of.js';
import { liveJournal } from './live-journal.js';
import { pauseForReboot } from './reboot.js';
import { deadlineOf, runInfoOf } from './request.js';
import type { RunFiles } from './run-files.js';
import type { Intent, Resumed, RunOutcome, RunRequest } from './types.js';
import { monotonicMs } from '../util/clock.js';

/** What executing a run came to: paused for a reboot (recorded, its outcome so far), or over (its journal, to be recorded). */
export type Executed = { paused: true; outcome: RunOutcome } | { paused: false; journal: RunJournal };

/** A run under way: what its phases need, and its journal as it stands. */
interface Running {
  ctx: RunContext;
  request: RunRequest;
  files: RunFiles;
  resumed: Resumed | undefined;
  plan: Plan;
  deadline: number;
  baseEnv: NodeJS.ProcessEnv;
  marker: string;
  run: JournalRun;
  live: ReturnType<typeof liveJournal>;
  journal: (phases: PhaseRecord[]) => RunJournal;
}

/** What perform.ts asks to run: the request, its intent, and the pause it resumes, if any. */
export interface ToExecute {
  request: RunRequest;
  intent: Intent;
  resumed?: Resumed | undefined;
}

/** Executes the run once its locks are held (`lockWaitMs`: how long taking them took). */
export async function execute(ctx: RunContext, asked: ToExecute, files: RunFiles, lockWaitMs: number): Promise<Executed> {
  const { request, intent, resumed } = asked;
  const { runId } = files;
  const startedAt = (resumed ? new Date(resumed.journal.started_at) : new Date()).toISOString();
  const plan = planOf(ctx);
  refuseUntrusted(ctx, plan);
  // A resumed run's bound starts again with its boot (the reboot took time no step had).
  const deadline = deadlineOf(request, ctx.config, Date.now());
  const boots = [...(resumed?.journal.boots ?? []), { boot_id: bootId(ctx.env), started_at: new Date().toISOString() }];
  const run: JournalRun = { facts: null, explorers: [], boots, reboots: [...(resumed?.journal.reboots ?? [])], timings: startTimings(resumed?.journal.timings) };
  addTiming(run.timings, 'lock_wait_ms', lockWaitMs);
  logStart(ctx, request, intent, runId, plan, deadline);
  const head = headOf(ctx, request, intent, runId, startedAt);
  /** The journal as it stands: `running` until the end, then the outcome. */
  const journal = (phases: PhaseRecord[]) => journalOf(head, phases, run);
  const live = liveJournal(new JournalStore(ctx.stateDir), journal);
  const baseEnv = runEnvironment(ctx.env, runInfoOf(ctx, request, intent, files));
  const marker = runMarker(runId);
  const { builtin, store } = await withBuiltinFacts(ctx, baseEnv);
  run.facts = builtin.facts;
  addTiming(run.timings, 'explorers_ms', builtin.ms);
  const r: Running = { ctx, request, files, resumed, plan, deadline, baseEnv, marker, run, live, journal };
  const { result, health, machineryFailed } = await runPhases(r, builtin, store);
  await live.done();
  if (result.paused) {
    const paused = { ...journal(withPending(plan, result.phases)), status: 'rebooting' as const, exit_code: ExitCode.ok };
    ctx.log.warn(`run ${runId}: paused for a reboot (${result.paused.phase}/${result.paused.step}: ${result.paused.reason}); bootstrap server.resume continues it after the reboot`);
    return { paused: true, outcome: { id: runId, status: 'rebooting', exitCode: ExitCode.ok, journal: paused, journalPath: join(ctx.stateDir, 'runs', `${runId}.json`), dryRun: null } };
  }
  const success = result.failure === null;
  const exitCode = success ? ExitCode.ok : machineryFailed ? ExitCode.internal : ExitCode.failed;
  // The versions in force after the run: a failed upgrade leaves the old one (the target is in
  // the journal's version and the summary's upgrade).
  const inForce = success || request.action !== 'upgrade' ? enabledVersions(intent.products) : { ...enabledVersions(intent.products), [request.product!]: intent.versionPrevious ?? null };
  const outcome: RunJournal = { ...journal(result.phases), status: success ? 'success' : 'failure', exit_code: exitCode, products: inForce, failure: result.failure, backouts: result.backouts, error_steps: result.errorSteps, health };
  return { paused: false, journal: outcome };
}

/** The pipeline, with what the run adds to it: explorer.d first, the pause for a reboot, the health gate. */
async function runPhases(r: Running, builtin: { facts: Facts; ms: number }, store: FactsStore): Promise<{ result: PipelineResult; health: Checkup | null; machineryFailed: boolean }> {
  const { ctx, request, plan, resumed, deadline, baseEnv, marker } = r;
  const config = ctx.config;
  const signal = request.signal ?? new AbortController().signal;
  const cleanupSignal = request.cleanupSignal ?? new AbortController().signal;
  const sourcing = { plan, phases: config.phases, log: ctx.log, baseEnv, marker };
  const timings = r.run.timings;
  let health: Checkup | null = null;
  try {
    const result = await runPipeline({
      plan,
      baseEnv,
      environment: (phase, cleanup) => timed(timings, 'environment_ms', () => phaseEnvironment(sourcing, phase, cleanup ? { cleanup: cleanupSignal } : { signal, deadline }), plan.environment.files.length > 0),
      marker,
      phases: config.phases,
      log: ctx.log,
      signal,
      cleanupSignal,
      deadline,
      changesDir: r.files.changesDir,
      beforePhases: async (env) => {
        const explored = await timed(timings, 'explorers_ms', () => exploreAndStore(plan.explorers.steps, builtin, store, explorerOptions(ctx, plan, env, deadline, signal)));
        Object.assign(r.run, { facts: explored.all, explorers: explored.records });
        Object.assign(baseEnv, factEnvironment(explored.facts, (m) => ctx.log.warn(m)));
        return explored.failure;
      },
      resume: resumed && { after: { phase: resumed.paused.phase, step: resumed.paused.step }, phases: resumed.journal.phases },
      abandon: resumed && request.resume === 'abandon' ? abandonFailure(resumed) : undefined,
      onReboot: (at, phases) => onReboot(r, at, phases),
      onStep: request.onStep,
      // The checks of the run's target mode (BOOTSTRAP_MODE is the intent's mode).
      afterPhases: config.phases.healthGate ? () => timed(timings, 'health_gate_ms', () => healthGate(ctx, request.signal, (c) => (health = c), baseEnv['BOOTSTRAP_MODE']!)) : undefined,
      onProgress: r.live.update,
    });
    return { result, health, machineryFailed: false };
  } catch (err) {
    // The run machinery itself failed (no bash, no fork, a bug): still journaled and reported.
    const message = `the run could not go on: ${toBootstrapError(err).message}`;
    ctx.log.error(message);
    const result = { phases: [], failure: toFailureRecord({ phase: 'agent', step: '', kind: 'exit', exitCode: null, message }), backouts: [], errorSteps: [], paused: null };
    return { result, health, machineryFailed: true };
  } finally {
    // At the end of a run nothing a step started is left running (setsid and double forks too).
    const left = await sweepMarkedNamed(marker, config.phases.killGraceMs);
    if (left.length) ctx.log.warn(`ended ${left.length} process(es) the run's steps left running: ${describeProcesses(left)} (to keep a service: bootstrap-detach or systemd-run, docs/writing-steps.md: Migrating from os-refresh-config)`);
  }
}

/** Runs `work`, adding the time it took to `timings[key]` (unless `when` is false: nothing was done). */
async function timed<T>(timings: RunTimings, key: keyof RunTimings, work: () => Promise<T>, when = true): Promise<T> {
  const t0 = monotonicMs();
  try {
    return await work();
  } finally {
    if (when) addTiming(timings, key, monotonicMs() - t0);
  }
}

/** A step asked for a reboot: pause the run (reboot.ts); null lets the pipeline stop there, a failure ends the run. */
async function onReboot(r: Running, at: RebootRequest, phases: PhaseRecord[]): Promise<Failure | null> {
  const journal = () => ({ ...r.journal(withPending(r.plan, phases)), status: 'rebooting' as const, exit_code: ExitCode.ok });
  const pause = await pauseForReboot(r.ctx, { at, request: r.request, runId: r.files.runId, lock: r.files.lock, reboots: r.run.reboots, journal, live: r.live, previous: r.resumed?.paused });
  return pause.paused ? null : pause.failure;
}

function abandonFailure(resumed: Resumed): Failure {
  const { paused } = resumed;
  return { phase: paused.phase, step: paused.step, kind: 'reboot', exitCode: null, message: `abandoned while it waited for the reboot it asked for (${paused.reason}): server.resume --abandon` };
}

function logStart(ctx: RunContext, request: RunRequest, intent: Intent, runId: string, plan: Plan, deadline: number): void {
  const log = ctx.log;
  if (log.isEnabled('debug')) {
    const phases = plan.phases.filter((p) => p.steps.length > 0);
    const skipped = [...plan.phases, plan.error].reduce((n, p) => n + p.skipped.length, 0);
    log.debug(`plan: ${phases.reduce((n, p) => n + p.steps.length, 0)} steps in ${phases.map((p) => p.phase).join(', ') || 'no phase'}; ${plan.environment.files.length} environment.d files; ${skipped} files skipped (see phases.list); deadline in ${((deadline - Date.now()) / 1000).toFixed(0)} s`);
  }
  log.info(`run ${runId}: ${request.action} on ${ctx.config.server.name} (mode ${intent.mode}), phases from ${ctx.phasesDir}`);
}

/** What the run's journal says of it beside its phases. */
function headOf(ctx: RunContext, request: RunRequest, intent: Intent, runId: string, startedAt: string): JournalHead {
  return {
    id: runId,
    action: request.action,
    command: ctx.commandLine,
    server: ctx.config.server.name,
    status: 'running',
    startedAt,
    phasesDir: ctx.phasesDir,
    mode: intent.mode,
    modePrevious: intent.modePrevious,
    product: request.action === 'upgrade' ? request.product! : null,
    version: intent.toVersion,
    versionPrevious: intent.versionPrevious,
    products: enabledVersions(intent.products),
    callbackUrl: request.callbackUrl ? redactUrl(request.callbackUrl) : null,
    label: request.label,
  };
}

/** Refuses the plan as dry-run and phases.list would (77/78); runs what allow_insecure lets run, loudly. */
function refuseUntrusted(ctx: RunContext, plan: Plan): void {
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  for (const r of plan.refused) if (r.kind === 'insecure') ctx.log.warn(`INSECURE (allow_insecure = true): running ${r.path}, ${r.reason}`);
}
