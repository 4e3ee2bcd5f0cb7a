// Facts outside a run: `server.facts --refresh` collects them without the run lock, and a dry
// run's preview collects them without writing facts.json. Explorers get what steps get of the
// server (name, state dir, the built-in facts) and environment.d, but no run. A run collects its
// facts itself (run/execute) with the same explorer options. Also what `server.facts` shows of
// them (selectFacts).

import { promises as fsp } from 'node:fs';
import { DataError } from '../errors.js';
import { EnvironmentFileError, phaseEnvironment, runMarker } from '../pipeline/environment.js';
import { planRefusal, type Plan } from '../pipeline/plan.js';
import { planOf, registerSecrets, type RunContext } from './context.js';
import { newRunId, type StepRecord } from '../state/journal.js';
import { sweepMarked } from '../util/process.js';
import { makeScratchDir, sweepDeadScratch } from '../util/scratch.js';
import { describeChoices } from '../util/suggest.js';
import { exploreAndStore, type ExplorerOptions } from '../facts/explorers.js';
import { FactsStore, builtinCollection, factEnvironment, factsSchema, type Facts, type FactsDoc } from '../facts/facts.js';

export interface FactsReport {
  doc: FactsDoc;
  /** The explorers' records when they ran now. */
  explorers: StepRecord[];
  /** The explorer that failed when they ran now (its fact is absent), or null. */
  failure: string | null;
  /** True when the facts were collected now (`--refresh`, or none were stored). */
  collected: boolean;
}

/** The facts named (all when none); an unknown name is refused (65) with those that exist. */
export function selectFacts(report: FactsReport, names: string[]): FactsReport {
  if (names.length === 0) return report;
  const known = Object.keys(report.doc.facts);
  for (const n of names) if (!Object.hasOwn(report.doc.facts, n)) throw new DataError(`no fact '${n}'`, describeChoices(n, known));
  return { ...report, doc: { ...report.doc, facts: Object.fromEntries(names.map((n) => [n, report.doc.facts[n]])) } };
}

/**
 * `server.facts`: the stored facts (all, or those `names`); collected now with `refresh`, or when
 * none were ever collected. `ctx` is asked for only to collect.
 */
export async function factsReport(stateDir: string, ctx: () => RunContext, options: { names?: string[]; refresh?: boolean }): Promise<FactsReport> {
  const stored = options.refresh ? null : await new FactsStore(stateDir).read();
  const report: FactsReport = stored ? { doc: stored, explorers: [], failure: null, collected: false } : { ...(await collectFacts(ctx())), collected: true };
  return selectFacts(report, options.names ?? []);
}

/**
 * `server.facts --refresh`: the facts collected now, outside any run and without the run lock
 * (explorers must not change the system), and stored in facts.json. Explorers get what steps
 * get of the server (name, state dir, the built-in facts) and environment.d, but no run.
 */
export async function collectFacts(ctx: RunContext): Promise<{ doc: FactsDoc; explorers: StepRecord[]; failure: string | null }> {
  const config = ctx.config;
  const plan = planOf(ctx);
  const refusal = planRefusal(plan, ctx.config.phases.allowInsecure);
  if (refusal) throw refusal;
  await registerSecrets(ctx); // explorers run: their output is logged and kept
  await ctx.store.ensureDir();
  await sweepLeftovers(ctx);
  const runId = newRunId();
  const marker = runMarker(runId);
  // Nothing in it: it names this collection, so that what its explorers leave if the agent is killed is ended by the next command.
  const scratch = await makeScratchDir(ctx.stateDir, runId);
  const env: NodeJS.ProcessEnv = { ...ctx.env, BOOTSTRAP_RUN_ID: runId, BOOTSTRAP_SERVER: config.server.name, BOOTSTRAP_STATE_DIR: ctx.stateDir };
  const { builtin, store } = await withBuiltinFacts(ctx, env);
  try {
    const explored = await exploreNow(ctx, plan, env, marker, builtin, store, undefined);
    const doc = (await store.read()) ?? { schema: factsSchema, collected_at: new Date().toISOString(), facts: explored.all, failed: [], builtin_ms: builtin.ms, explorers_ms: 0 };
    return { doc, explorers: explored.records, failure: explored.failureText };
  } catch (err) {
    if (!(err instanceof EnvironmentFileError)) throw err;
    // The built-in facts only; facts.json keeps the last collection.
    const doc = { schema: factsSchema, collected_at: new Date().toISOString(), facts: builtin.facts, failed: [], builtin_ms: builtin.ms, explorers_ms: 0 };
    return { doc, explorers: [], failure: `${err.message} (explorer.d did not run; facts.json was not written)` };
  } finally {
    await sweepMarked(marker, config.phases.killGraceMs);
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

/**
 * What dry runs and fact collections left when their agent died (util/scratch): their dirs (a
 * dry run's snapshot holds secrets) and the processes their scripts started. Every run command
 * looks, as a run's takeover does for a dead run.
 */
export async function sweepLeftovers(ctx: RunContext): Promise<void> {
  const left = await sweepDeadScratch(ctx.stateDir, runMarker, ctx.config.phases.killGraceMs);
  if (left.dirs.length) ctx.log.warn(`removed what ${left.dirs.length} dry run(s), verify(s) or fact collection(s) left when their agent died (${left.dirs.join(', ')}), and ended ${left.processes} process(es) they left running`);
}

/** The built-in facts, given to `env` as steps get them (BOOTSTRAP_FACT_*, BOOTSTRAP_FACTS_JSON). */
export async function withBuiltinFacts(ctx: RunContext, env: NodeJS.ProcessEnv): Promise<{ builtin: { facts: Facts; ms: number }; store: FactsStore }> {
  const store = new FactsStore(ctx.stateDir);
  const builtin = await builtinCollection(store, ctx.env);
  Object.assign(env, factEnvironment(builtin.facts, (m) => ctx.log.warn(m)), { BOOTSTRAP_FACTS_JSON: store.file });
  return { builtin, store };
}

/**
 * explorer.d outside a run (a dry run, server.facts --refresh): with environment.d sourced for
 * phase `explorer` when there are explorers; `store` null writes no facts.json. Throws
 * EnvironmentFileError when environment.d fails.
 */
export async function exploreNow(ctx: RunContext, plan: Plan, env: NodeJS.ProcessEnv, marker: string, builtin: { facts: Facts; ms: number }, store: FactsStore | null, signal: AbortSignal | undefined) {
  const explorerEnv = plan.explorers.steps.length ? await phaseEnvironment({ plan, phases: ctx.config.phases, log: ctx.log, baseEnv: env, marker }, 'explorer', { signal }) : { ...env, BOOTSTRAP_PHASE: 'explorer' };
  const explored = await exploreAndStore(plan.explorers.steps, builtin, store, explorerOptions(ctx, plan, explorerEnv, undefined, signal));
  return { ...explored, failureText: explored.failure && `explorer/${explored.failure.step}: ${explored.failure.message}` };
}

/** Explorers as steps are: script_timeout within the run's deadline, output to the log, secrets masked. */
export function explorerOptions(ctx: RunContext, plan: Plan, env: NodeJS.ProcessEnv, deadline: number | undefined, signal: AbortSignal | undefined): ExplorerOptions {
  return {
    env,
    timeoutMs: ctx.config.phases.scriptTimeoutMs,
    deadline,
    killGraceMs: ctx.config.phases.killGraceMs,
    signal,
    viaSh: plan.viaSh,
    onLine: (source, line) => ctx.log.step(source, line),
    masker: ctx.log.masker,
  };
}
