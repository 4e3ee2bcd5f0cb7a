// Executing a run once its lock is held: the plan (refused when untrusted), the run's
// environment, the facts, the pipeline (phases, a pause for a reboot, the health gate), then
// what happened is handed to record.ts. Nothing a step started outlives it.

import { join } from 'node:path';
import { type Config, redactUrl } from '../config/config.js';
import { ExitCode, toBootstrapError } from '../errors.js';
import { explorerOptions, withBuiltinFacts } from '../facts/collect.js';
import { exploreAndStore } from '../facts/explorers.js';
import { factEnvironment, type Facts } from '../facts/facts.js';
import type { Checkup } from '../heartbeat/types.js';
import { phaseEnvironment, runEnvironment, type RunInfo, runMarker } from '../pipeline/environment.js';
import { type PipelineResult, runPipeline, toFailureRecord } from '../pipeline/pipeline.js';
import { type Plan, planRefusal } from '../pipeline/plan.js';
import { enabledVersions } from '../products.js';
import { countSteps, describeCounts, journalSchema, JournalStore, type PhaseRecord, type RebootRecord, type RunJournal, type StepRecord } from '../state/journal.js';
import { bootId, sweepMarked } from '../util/process.js';
import { planOf, type RunContext } from './context.js';
import { healthGate } from './health-gate.js';
import { withPending } from './journal-of.js';
import { liveJournal } from './live-journal.js';
import { pauseForReboot } from './reboot.js';
import { recordRun } from './record.js';
import { deadlineOf } from './request.js';
import type { RunFiles } from './run-files.js';
import type { Intent, Resumed, RunOutcome, RunRequest } from './types.js';

export async function execute(ctx: RunContext, config: Config, request: RunRequest, intent: Intent, files: RunFiles, baseDir: string, resumed?: Resumed): Promise<RunOutcome> {
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

/** Refuses the plan as dry-run and phases.list would (77/78); runs what allow_insecure lets run, loudly. */
function refuseUntrusted(ctx: RunContext, plan: Plan): void {
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  for (const r of plan.refused) if (r.kind === 'insecure') ctx.log.warn(`INSECURE (allow_insecure = true): running ${r.path}, ${r.reason}`);
}

/** What steps learn of the run from the environment (BOOTSTRAP_ACTION, _MODE, _VERSION …). */
export function runInfoOf(ctx: RunContext, config: Config, request: RunRequest, intent: Intent, runId: string, snapshot: string): RunInfo {
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
