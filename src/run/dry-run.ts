// The dry run: changes nothing and takes no lock — the plan and its verdict, the syntax check,
// and a preview of what a run started now would do (facts collected, NAME.if files run).

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '../errors.js';
import { exploreNow, sweepLeftovers, withBuiltinFacts } from './facts.js';
import { factEnvironment, type Facts } from '../facts/facts.js';
import { EnvironmentFileError, phaseEnvironment, runEnvironment, runMarker } from '../pipeline/environment.js';
import { type Plan, planRefusal } from '../pipeline/plan.js';
import { previewSteps, type StepPreview } from '../pipeline/preview.js';
import { checkSyntax } from '../pipeline/syntax.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { newRunId, type StepRecord } from '../state/journal.js';
import { sweepMarked } from '../util/process.js';
import { makeScratchDir } from '../util/scratch.js';
import { maskSecrets, planOf, type RunContext } from './context.js';
import { resolveIntent, runInfoOf } from './request.js';
import { snapshotOf } from './run-files.js';
import type { DryRunReport, Intent, RunOutcome, RunRequest } from './types.js';

/**
 * Changes nothing and takes no lock: the plan, its verdict (as a run would judge it), the syntax
 * check, and a preview of the run: the facts are collected (explorer.d runs; facts.json is not
 * written) and each NAME.if runs with the environment its step would get.
 */
export async function dryRun(ctx: RunContext, request: RunRequest): Promise<RunOutcome> {
  await sweepLeftovers(ctx);
  const plan = planOf(ctx);
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  const syntax = await checkSyntax(plan);
  // Worked out as the run would (a downgrade is refused the same way), before anything runs.
  const intent = resolveIntent(ctx.config, await ctx.store.read(), request);
  const preview = refusal ? null : await previewRun(ctx, request, plan, intent);
  const ok = syntax.every((s) => s.ok) && refusal === null && preview?.failure == null;
  const exitCode = refusal ? refusal.exitCode : ok ? ExitCode.ok : ExitCode.failed;
  const report: DryRunReport = {
    action: request.action,
    upgrade: upgradeOf(request, intent),
    plan,
    syntax,
    ok,
    refusal: refusal?.describe() ?? null,
    preview: preview?.steps ?? null,
    facts: preview?.facts ?? null,
    explorers: preview?.explorers ?? [],
    failure: preview?.failure ?? null,
  };
  return { id: null, status: 'dry-run', exitCode, journal: null, journalPath: null, dryRun: report };
}

/** product.upgrade: the product, the version in force and the target (what the run's summary says after it). */
function upgradeOf(request: RunRequest, intent: Intent): DryRunReport['upgrade'] {
  return request.action === 'upgrade' ? { product: request.product!, from: intent.versionPrevious ?? null, to: intent.toVersion! } : null;
}

interface Preview {
  steps: StepPreview[];
  facts: Facts | null;
  explorers: StepRecord[];
  failure: string | null;
}

async function previewRun(ctx: RunContext, request: RunRequest, plan: Plan, intent: Intent): Promise<Preview> {
  return outOfRun(ctx, request, plan, intent, async (environment, explored) => {
    const steps = await previewSteps({ plan, environment, marker: explored.marker, phases: ctx.config.phases, log: ctx.log, signal: request.signal });
    const failed = steps.find((s) => s.verdict === 'fail');
    return { steps, facts: explored.facts, explorers: explored.records, failure: failed ? `${failed.phase}/${failed.step}: ${failed.reason}` : null };
  });
}

/**
 * What a run started now would give its files, without its lock and without writing anything
 * of the state: a scratch dir with the config snapshot, the run's environment, the facts
 * (explorers run, facts.json not written), each phase's environment (environment.d sourced).
 * `ask` runs files in it (the dry run: each NAME.if); everything they started ends with it.
 */
async function outOfRun(
  ctx: RunContext,
  request: RunRequest,
  plan: Plan,
  intent: Intent,
  ask: (environment: (phase: string) => Promise<NodeJS.ProcessEnv>, explored: { marker: string; facts: Facts | null; records: StepRecord[] }) => Promise<Preview>,
): Promise<Preview> {
  const config = ctx.config;
  maskSecrets(ctx, intent.products); // .if files and explorers run: their output is logged
  const runId = newRunId();
  const marker = runMarker(runId);
  // Findable if this agent is killed: the next command removes it and ends what the .if files left.
  const tmp = await makeScratchDir(ctx.stateDir, runId, (dir) => writeJsonAtomic(join(dir, 'config.json'), snapshotOf(config, intent, request, runId), 0o600, { durable: false }));
  try {
    const snapshot = join(tmp, 'config.json');
    const baseEnv = runEnvironment(ctx.env, runInfoOf(ctx, request, intent, { runId, snapshot }));
    const { builtin } = await withBuiltinFacts(ctx, baseEnv);
    const explored = await exploreNow(ctx, plan, baseEnv, marker, builtin, null, request.signal);
    if (explored.failure) return { steps: [], facts: explored.all, explorers: explored.records, failure: explored.failureText };
    Object.assign(baseEnv, factEnvironment(explored.facts, (m) => ctx.log.warn(m)));
    const environment = (phase: string) => phaseEnvironment({ plan, phases: config.phases, log: ctx.log, baseEnv, marker }, phase, { signal: request.signal });
    return await ask(environment, { marker, facts: explored.all, records: explored.records });
  } catch (err) {
    if (err instanceof EnvironmentFileError) return { steps: [], facts: null, explorers: [], failure: err.message };
    throw err;
  } finally {
    await sweepMarked(marker, config.phases.killGraceMs);
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}
