// The library: every command as a method, with no global state. Two agents on two state dirs in
// one process do not see each other. The CLI is a thin layer over this. The agent resolves the
// paths, reads the config, holds the state store and the run lock, and hands a run what it
// needs of them as a RunContext (run/context.ts): the run lifecycle is run/, below it. Each
// method delegates to the module of its concept (settings/, status/, heartbeat/commands.ts, …).

import { join, resolve } from 'node:path';
import { loadConfig, parseConfig, type Config, type HeartbeatSpec } from './config/config.js';
import type { FlushReport } from './callback/deliver.js';
import { CallbackReporter, type QueueOptions } from './callback/reporter.js';
import type { CallbackBody } from './callback/payload.js';
import { heartbeatCheckup, heartbeatGet, selectHeartbeats } from './heartbeat/commands.js';
import type { Checkup } from './heartbeat/types.js';
import type { BootstrapError } from './errors.js';
import { PidLock } from './lock/pid-lock.js';
import { silentLogger, type Logger } from './log/log.js';
import { effectiveProducts, type EffectiveProduct, type EffectiveSetting, type SettingChange } from './products.js';
import type { WriteHooks } from './state/atomic.js';
import type { SettingUndo, SettingsRestore } from './settings/undo.js';
import { putBack, setUndoable, unsetUndoable, type SettingsContext } from './settings/change.js';
import { assertMayReveal, selectSettings } from './settings/show.js';
import { StateStore, type Disabled, type StateDoc } from './state/state.js';
import { planRefusal, type Plan } from './pipeline/plan.js';
import { factsReport, type FactsReport } from './run/facts.js';
import { performRun, validateMode, type RunOutcome, type RunRequest } from './run/index.js';
import { performRefresh, recordProvisionRequest } from './run/provision-request.js';
import { performVerify, type VerifyOutcome, type VerifyRequest } from './run/verify.js';
import { maskSecrets, planOf, type RunContext } from './run/context.js';
import { startOrRefuse } from './run/refusal.js';
import { blameJournals, type RunBlame, type StepStats } from './state/blame.js';
import { JournalStore, type RunJournal } from './state/journal.js';
import { checkEnabled, disableRuns, enableRuns, validateReason, type RunGate } from './run/disable.js';
import type { StatusCheck } from './status/check.js';
import { probeStatus } from './status/probe.js';
import { modeInfo, statusReport, type ModeInfo, type StatusReport } from './status/report.js';
import { writeMetrics, type MetricsKind } from './metrics/index.js';

export type { SettingChange } from './products.js';
export type { SettingUndo, SettingsRestore } from './settings/undo.js';
export type { FactsReport } from './run/facts.js';
export type { ModeInfo, StatusReport } from './status/report.js';
export type { VerifyOutcome, VerifyRequest } from './run/verify.js';

export const defaultPaths = {
  config: '/etc/bootstrap/bootstrap.ini',
  stateDir: '/var/bootstrap',
  phasesDir: '/etc/bootstrap/phases',
};

export interface AgentOptions {
  /** Paths: option > environment (BOOTSTRAP_CONFIG, BOOTSTRAP_STATE_DIR, BOOTSTRAP_PHASES_DIR) > ini > default. */
  config?: string | undefined;
  stateDir?: string | undefined;
  phasesDir?: string | undefined;
  /** The environment the agent reads and steps inherit (default: process.env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The command line, recorded in the lock owner record. */
  commandLine?: string;
  stateWriteHooks?: WriteHooks;
}

export class Agent {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  private readonly options: AgentOptions;
  private cachedConfig: Config | undefined;
  private cachedStore: StateStore | undefined;
  private cachedReporter: CallbackReporter | undefined;

  /** The working directory when the agent was made: relative path options and variables are resolved against it, once. */
  private readonly cwd: string;

  constructor(options: AgentOptions = {}) {
    this.options = options;
    this.env = options.env ?? process.env;
    this.log = options.logger ?? silentLogger();
    this.cwd = process.cwd();
  }

  get configFile(): string {
    return resolve(this.cwd, this.options.config ?? nonEmpty(this.env['BOOTSTRAP_CONFIG']) ?? defaultPaths.config);
  }

  /** The validated config, read once per agent. */
  config(): Config {
    if (!this.cachedConfig) {
      const config = loadConfig(this.configFile);
      this.log.configure({ ...config.log, server: config.server.name }); // may refuse [log] file: then no command goes on without its log
      this.cachedConfig = config;
    }
    return this.cachedConfig;
  }

  /** Steps run in their phase dir: every path they get is absolute. */
  get stateDir(): string {
    return resolve(this.cwd, this.options.stateDir ?? nonEmpty(this.env['BOOTSTRAP_STATE_DIR']) ?? this.config().server.stateDir ?? defaultPaths.stateDir);
  }

  /** --phases-dir > BOOTSTRAP_PHASES_DIR > OS_REFRESH_CONFIG_BASE_DIR (os-refresh-config's) > ini > default. */
  get phasesDir(): string {
    return this.phasesDirWith(() => this.config());
  }

  private phasesDirWith(config: () => Config): string {
    return resolve(
      this.cwd,
      this.options.phasesDir ?? nonEmpty(this.env['BOOTSTRAP_PHASES_DIR']) ?? nonEmpty(this.env['OS_REFRESH_CONFIG_BASE_DIR']) ?? config().server.phasesDir ?? defaultPaths.phasesDir,
    );
  }

  get store(): StateStore {
    this.cachedStore ??= new StateStore(this.stateDir, { writeHooks: this.options.stateWriteHooks, warn: (m) => this.log.warn(m) });
    return this.cachedStore;
  }

  get runLock(): PidLock {
    return new PidLock(join(this.stateDir, 'run.lock'));
  }

  get commandLine(): string {
    return this.options.commandLine ?? 'bootstrap (library)';
  }

  /** Config and state, with secrets registered for masking. */
  async load(): Promise<{ config: Config; state: StateDoc; products: EffectiveProduct[] }> {
    const config = this.config();
    const state = await this.store.read();
    const products = effectiveProducts(config, state);
    maskSecrets({ config, log: this.log }, products);
    return { config, state, products };
  }

  /** What a run needs of the agent (run/context.ts); built per command, config first. */
  runContext(): RunContext {
    const config = this.config();
    return { config, stateDir: this.stateDir, phasesDir: this.phasesDir, store: this.store, runLock: this.runLock, env: this.env, log: this.log, commandLine: this.commandLine, callbacks: this.callbacks };
  }

  // --- products -------------------------------------------------------------------------------

  /** Effective settings; secrets as `********` unless `reveal`. */
  async productGet(options: { path?: string | undefined; reveal?: boolean } = {}): Promise<{ products: EffectiveProduct[]; setting?: EffectiveSetting }> {
    if (options.reveal) assertMayReveal(this.stateDir);
    const { config, products } = await this.load();
    return selectSettings(config, products, options);
  }

  /**
   * Validates every pair first, then writes all or none. Each change is logged at info (who,
   * what, old → new, secrets masked), so journald keeps an audit trail; a setting given its
   * current value is reported unchanged.
   */
  async productSet(options: { pairs: string[] }): Promise<SettingChange[]> {
    return (await this.productSetUndoable(options)).changes;
  }

  /** Puts settings back to their defaults. */
  async productUnset(options: { names: string[] }): Promise<SettingChange[]> {
    return (await this.productUnsetUndoable(options)).changes;
  }

  /** productSet, with what puts its changes back (`restoreSettings`) when the run of --apply fails. */
  async productSetUndoable(options: { pairs: string[] }): Promise<{ changes: SettingChange[]; undo: SettingUndo[] }> {
    return setUndoable(this.settingsContext(), options.pairs);
  }

  /** productUnset, with what puts its changes back when the run of --apply fails. */
  async productUnsetUndoable(options: { names: string[] }): Promise<{ changes: SettingChange[]; undo: SettingUndo[] }> {
    return unsetUndoable(this.settingsContext(), options.names);
  }

  /** After the run of product.set/unset --apply did not succeed: its changes put back (settings/change.ts). */
  async restoreSettings(undo: SettingUndo[]): Promise<SettingsRestore> {
    if (undo.length === 0) return { restored: [], kept: [] };
    return putBack({ store: this.store, log: this.log, env: this.env, commandLine: this.commandLine }, undo);
  }

  private settingsContext(): SettingsContext {
    const config = this.config();
    return { config, store: this.store, log: this.log, env: this.env, commandLine: this.commandLine };
  }

  // --- server ---------------------------------------------------------------------------------

  async getMode(): Promise<ModeInfo> {
    return modeInfo(this.config(), await this.store.read());
  }

  /** Commits a mode without running anything (`server.mode MODE --no-apply`). */
  async commitMode(mode: string): Promise<ModeInfo> {
    validateMode(this.config(), mode);
    const state = await this.store.update(this.commandLine, (s) => {
      s.mode = mode;
      return s;
    });
    await this.writeMetrics('run'); // bootstrap_info{mode}
    return modeInfo(this.config(), state);
  }

  // --- runs -------------------------------------------------------------------------------------

  /** `server.provision`: records the products to run, runs the pipeline, marks the server provisioned on success. */
  provision(options: Omit<RunRequest, 'action'> & RunGate = {}): Promise<RunOutcome> {
    return this.startRun({ ...options, action: 'provision' }, options, async (ctx, request) => {
      await recordProvisionRequest(ctx, request);
      return performRun(ctx, request);
    });
  }

  /** `server.refresh`: re-applies the configuration. On a server never provisioned: nothing (null). */
  refresh(options: Omit<RunRequest, 'action' | 'products'> & RunGate = {}): Promise<RunOutcome | null> {
    return this.startRun({ ...options, action: 'refresh' }, options, performRefresh);
  }

  /** `server.mode MODE`: runs the pipeline with action mode; the mode is committed on success. */
  changeMode(options: Omit<RunRequest, 'action'> & RunGate & { mode: string }): Promise<RunOutcome> {
    return this.startRun({ ...options, action: 'mode' }, options);
  }

  /** `product.upgrade PRODUCT`: the new version is recorded only on success. */
  upgrade(options: Omit<RunRequest, 'action'> & RunGate & { product: string }): Promise<RunOutcome> {
    return this.startRun({ ...options, action: 'upgrade' }, options);
  }

  /**
   * `server.resume`: continue the run that waits for its reboot (once the boot id changed; else
   * 75), or end it as failed (`abandon`). No run waiting: status `nothing`, exit 0.
   */
  resume(options: Omit<RunRequest, 'action' | 'resume'> & RunGate & { abandon?: boolean } = {}): Promise<RunOutcome> {
    return this.startRun({ ...options, action: 'refresh', resume: options.abandon ? 'abandon' : 'continue' }, options);
  }

  /**
   * Every run command: the disable gate, the run (a refusal before its first step recorded as a
   * run and thrown with its exit code: run/refusal.ts), then the metrics whatever happened (none
   * for a dry run).
   */
  private startRun<T extends RunOutcome | null = RunOutcome>(request: RunRequest, gate: RunGate, start: (ctx: RunContext, request: RunRequest) => Promise<T> = (ctx, r) => performRun(ctx, r) as Promise<T>): Promise<T> {
    const paths = () => ({ configFile: this.configFile, flags: this.options, env: this.env, cwd: this.cwd, defaultStateDir: defaultPaths.stateDir, commandLine: this.commandLine, log: this.log });
    return this.withMetrics(
      'run',
      async () => {
        await this.checkEnabled(gate);
        return startOrRefuse(request, () => this.runContext(), start, paths);
      },
      request.dryRun,
    );
  }

  /** The gate of every run command: 75 while disabled, unless a dry run or forced (run/disable.ts). */
  async checkEnabled(gate: RunGate = {}): Promise<void> {
    return checkEnabled(() => this.store.read(), gate, this.log);
  }

  /** `server.disable --reason`: stops runs until `server.enable`. */
  disable(reason: string): Promise<{ disabled: Disabled; previous: Disabled | null }> {
    validateReason(reason); // a usage error (64) before the config is read
    return this.withMetrics('run', () => disableRuns(this.runContext(), reason));
  }

  /** `server.enable`: the disable it ended, or null when runs were not disabled. */
  enable(): Promise<Disabled | null> {
    return this.withMetrics('run', () => enableRuns(this.runContext()));
  }

  /**
   * `server.verify`: under the run lock, explorers, then each step's NAME.if and NAME.check;
   * never a step, backout or error.d. Recorded as a journal (action verify) and last_verify.
   */
  verify(options: VerifyRequest = {}): Promise<VerifyOutcome> {
    return this.withMetrics('run', () => performVerify(this.runContext(), options));
  }

  /** `phases.list`: the plan, with every skipped file and why. */
  phasesList(): Plan {
    return planOf({ config: this.config(), phasesDir: this.phasesDir, env: this.env });
  }

  /**
   * `phases.list` with no bootstrap.ini (a tree to look at before writing one): the plan under
   * the defaults a `[server]`-only ini gives (no_shebang = refuse, allow_insecure = false), in
   * the phases dir of --phases-dir, the environment or the default; and its verdict.
   */
  phasesListWithoutConfig(): { plan: Plan; refusal: BootstrapError | null } {
    const config = parseConfig('[server]\n', this.configFile);
    const plan = planOf({ config, phasesDir: this.phasesDirWith(() => config), env: this.env });
    return { plan, refusal: planRefusal(plan, config.phases.allowInsecure) };
  }

  /** The verdict a run would give the plan (77/78 naming every refused file), or null. */
  planRefusal(plan: Plan): BootstrapError | null {
    return planRefusal(plan, this.config().phases.allowInsecure);
  }

  async runsList(): Promise<RunJournal[]> {
    return new JournalStore(this.stateDir).list((problem) => this.log.warn(problem));
  }

  async runsShow(id = 'last'): Promise<RunJournal> {
    return new JournalStore(this.stateDir).read(id);
  }

  /** `runs.blame`: one run's files by duration, or (runs) each file's median and worst over the last `runs` journals. */
  async runsBlame(options: { id?: string | undefined; runs?: number | undefined } = {}): Promise<{ run: RunBlame } | { runs: number; steps: StepStats[] }> {
    return blameJournals(new JournalStore(this.stateDir), options, (problem) => this.log.warn(problem));
  }

  /**
   * `server.facts`: the stored facts (all, or those named); collected now with `refresh`, or when
   * none were ever collected. Collecting takes no run lock and runs explorer.d.
   */
  async facts(options: { names?: string[]; refresh?: boolean } = {}): Promise<FactsReport> {
    return factsReport(this.stateDir, () => this.runContext(), options);
  }

  /** Whether the run `id` is going on now (its agent holds the run lock), for a `running` journal. */
  async isRunning(id: string): Promise<boolean> {
    const probe = await this.runLock.probe();
    return probe.state === 'held' && probe.owner?.runId === id;
  }

  // --- heartbeats -------------------------------------------------------------------------------

  /** The checks named (all when none). Unknown names are refused with the names that exist. */
  heartbeatSpecs(names: string[] = []): HeartbeatSpec[] {
    return selectHeartbeats(this.config(), names);
  }

  /** `heartbeat.get`: runs the named checks (all when none) in parallel, whatever the mode; changes nothing. */
  async heartbeatGet(names: string[] = []): Promise<Checkup> {
    return heartbeatGet({ config: this.config(), env: this.env, log: this.log, store: this.store }, names);
  }

  /** `heartbeat.checkup`: every check of the mode in force in parallel; the result is kept as last_checkup (heartbeat/commands.ts). */
  heartbeatCheckup(options: { report?: boolean } = {}): Promise<Checkup> {
    return this.withMetrics('heartbeat', () => heartbeatCheckup({ config: this.config(), env: this.env, log: this.log, store: this.store, commandLine: this.commandLine, callbacks: this.callbacks }, options));
  }

  // --- callbacks -------------------------------------------------------------------------------

  /** Where callbacks go, and their outbox (callback/reporter.ts). */
  get callbacks(): CallbackReporter {
    this.cachedReporter ??= new CallbackReporter({ stateDir: this.stateDir, config: () => this.config().callback, log: this.log });
    return this.cachedReporter;
  }

  /**
   * Writes a callback to the outbox (before any attempt); nothing (null) when no URL is
   * configured. `held`: not delivered until released. Returns its file.
   */
  queueCallback(body: CallbackBody, override?: string, options: QueueOptions = {}): Promise<string | null> {
    return this.callbacks.queueOrThrow(body, override, options);
  }

  /** `callback.flush`: delivers what waits, oldest first, within `budgetMs` (default [callback] timeout). */
  flushCallbacks(options: { budgetMs?: number; lockWaitMs?: number; requeueDead?: boolean } = {}): Promise<FlushReport> {
    return this.withMetrics('run', () => this.callbacks.flush(options));
  }

  // --- metrics ---------------------------------------------------------------------------------

  /**
   * Rewrites node_exporter's textfile of `kind` from state.json and the outbox (metrics/); off
   * without [metrics] textfile_dir. Never throws: a failure is one warning.
   */
  writeMetrics(kind: MetricsKind): Promise<void> {
    return writeMetrics(kind, () => ({ config: this.config(), stateDir: this.stateDir, store: this.store }), this.log);
  }

  /** `work`, then the metrics of `kind` whatever happened (a refusal, a failure too); none for a dry run. */
  private async withMetrics<T>(kind: MetricsKind, work: () => Promise<T>, dryRun = false): Promise<T> {
    try {
      return await work();
    } finally {
      if (!dryRun) await this.writeMetrics(kind);
    }
  }

  /** `server.status`: config, state, the run lock (waited on up to `waitMs` while held), the outbox (status/report.ts). */
  async status(options: { waitMs?: number | undefined } = {}): Promise<StatusReport> {
    return statusReport({ stateDir: this.stateDir, phasesDir: this.phasesDir, runLock: this.runLock, load: () => this.load() }, options);
  }

  /** `server.status --check`: what a monitor alerts on (status/); the run lock is probed, never taken. */
  statusCheck(options: { maxAgeMs?: number | undefined; now?: number } = {}): Promise<StatusCheck> {
    return probeStatus({ store: this.store, stateDir: this.stateDir, runLock: this.runLock }, options);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
