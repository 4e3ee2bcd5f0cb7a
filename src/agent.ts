// The library: every command as a method, with no global state. Two agents on two state dirs in
// one process do not see each other. The CLI is a thin layer over this. The agent resolves the
// paths, reads the config, holds the state store and the run lock, and hands a run what it
// needs of them as a RunContext (run/context.ts): the run lifecycle is run/, below it.

import { join, resolve } from 'node:path';
import { loadConfig, parseConfig, type Config, type HeartbeatSpec } from './config/config.js';
import { readSecret, type FlushReport } from './callback/deliver.js';
import { Outbox } from './callback/outbox.js';
import { CallbackReporter, type QueueOptions } from './callback/reporter.js';
import { checkupCallback, type CallbackBody } from './callback/payload.js';
import { runCheckup, runCheckupOfMode } from './heartbeat/checkup.js';
import type { Checkup } from './heartbeat/types.js';
import { DataError, PermissionDeniedError, type BootstrapError } from './errors.js';
import { statSync } from 'node:fs';
import { PidLock, type LockOwner } from './lock/pid-lock.js';
import { silentLogger, type Logger } from './log/log.js';
import { auditLines, effectiveProducts, enabledVersions, findProduct, findSetting, maskProduct, parseAssignments, parseSettingNames, parseSettingPath, setSettings, unsetSettings, type EffectiveProduct, type EffectiveSetting, type SettingChange } from './products.js';
import type { WriteHooks } from './state/atomic.js';
import { readKeys, restoreSettings, undoOf, type SettingUndo, type SettingsRestore } from './settings-undo.js';
import { StateStore, type Disabled, type LastRun, type LastSuccess, type PausedRun, type StateDoc } from './state/state.js';
import { describeChoices } from './util/suggest.js';
import { planRefusal, type Plan } from './pipeline/plan.js';
import { sleep } from './util/process.js';
import { collectFacts, selectFacts, type FactsReport } from './run/facts.js';
import { performRun, successOf, validateMode, type RunOutcome, type RunRequest } from './run/index.js';
import { recordProvisionRequest } from './run/provision-request.js';
import { performVerify, type VerifyOutcome, type VerifyRequest } from './run/verify.js';
import { maskSecrets, planOf, registerSecrets, trustedChecks, type RunContext } from './run/context.js';
import { settleRefusal } from './run/refusal.js';
import { FactsStore } from './facts/facts.js';
import { blameRun, blameRuns, type RunBlame, type StepStats } from './state/blame.js';
import { JournalStore, newRunId, type RunJournal } from './state/journal.js';
import { assertEnabled, disableRuns, enableRuns, validateReason, type RunGate } from './run/disable.js';
import type { StatusCheck } from './status/check.js';
import { probeStatus } from './status/probe.js';
import { writeMetrics, type MetricsKind } from './metrics/index.js';

export type { SettingChange } from './products.js';
export type { SettingUndo, SettingsRestore } from './settings-undo.js';
export type { FactsReport } from './run/facts.js';
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

export interface ModeInfo {
  mode: string;
  origin: 'set' | 'default';
  modes: string[];
}

export interface StatusReport {
  server: string;
  config: string;
  stateDir: string;
  mode: string;
  modeOrigin: 'set' | 'default';
  provisioned: boolean;
  provisionedAt: string | null;
  /** declared_version: bootstrap.ini's, which an upgrade applies (products.ts: describeVersionDrift). */
  products: { name: string; version: string | null; declared_version: string | null; enabled: boolean }[];
  lastRun: LastRun | null;
  /** The last run that succeeded (kept across failed runs), and the failed or refused runs since. */
  lastSuccess: LastSuccess | null;
  failedRunsSinceSuccess: number;
  lock: { state: 'free' | 'held' | 'dead'; owner: LockOwner | null; path: string };
  lastCheckup: unknown;
  callbacks: { pending: number; oldestAgeSeconds: number | null; dead: number };
  /** The run that waits for a reboot one of its steps asked for, if any. */
  pausedRun: PausedRun | null;
  /** `server.disable`: runs are stopped until `server.enable`. */
  disabled: Disabled | null;
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
    if (options.reveal) this.checkMayReveal();
    const { config, products } = await this.load();
    const shown = options.reveal ? products : products.map(maskProduct);
    if (!options.path) return { products: shown };
    const { product, setting } = parseSettingPath(options.path);
    findProduct(config, product);
    const selected = shown.filter((p) => p.name === product);
    if (!setting) return { products: selected };
    findSetting(config, product, setting);
    return { products: selected, setting: selected[0]!.settings.find((s) => s.name === setting)! };
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
    const config = this.config();
    const assignments = parseAssignments(config, options.pairs);
    this.log.addSecrets(assignments.filter((a) => a.spec.type.kind === 'secret').map((a) => String(a.value)));
    const keys = assignments.map((a) => ({ product: a.spec.product, setting: a.spec.name }));
    return this.changeSettings('set', keys, (state) => setSettings(config, state, assignments, (previous) => this.maskPrevious(previous)));
  }

  /** productUnset, with what puts its changes back when the run of --apply fails. */
  async productUnsetUndoable(options: { names: string[] }): Promise<{ changes: SettingChange[]; undo: SettingUndo[] }> {
    const specs = parseSettingNames(this.config(), options.names);
    const keys = specs.map((s) => ({ product: s.product, setting: s.name }));
    return this.changeSettings('unset', keys, (state) => unsetSettings(state, specs, (previous) => this.maskPrevious(previous)));
  }

  /** One settings change under the state lock, with each key's raw value before and after it. */
  private async changeSettings(verb: 'set' | 'unset', keys: { product: string; setting: string }[], change: (state: StateDoc) => SettingChange[]): Promise<{ changes: SettingChange[]; undo: SettingUndo[] }> {
    let undo: SettingUndo[] = [];
    const changes = await this.store.update(this.commandLine, (state) => {
      const before = readKeys(state, keys);
      const made = change(state);
      undo = undoOf(made, before, readKeys(state, keys));
      return made;
    });
    return { changes: this.audit(verb, changes), undo };
  }

  /**
   * After the run of product.set/unset --apply failed (or never started): under the state lock,
   * each key the command changed goes back to its previous value, unless another command has set
   * it since (that value stands: it is reported kept). Audited as the change was.
   */
  async restoreSettings(undo: SettingUndo[]): Promise<SettingsRestore> {
    if (undo.length === 0) return { restored: [], kept: [] };
    const result = await this.store.update(this.commandLine, (state) => restoreSettings(state, undo));
    const back = new Set(result.restored.map((r) => `${r.product}.${r.setting}`));
    const undone = undo.filter((u) => back.has(`${u.product}.${u.setting}`)).map((u) => ({ ...u.change, value: u.change.previous, previous: u.change.value }));
    for (const line of auditLines('set', undone, this.env)) this.log.info(`${line} (put back: the run of --apply did not succeed)`);
    return result;
  }

  /**
   * A secret's value before product.set/unset changed it stays masked for the rest of the command:
   * the run of --apply (and whatever else this command runs) may still print the old value (a
   * step showing the config it replaces, a service's error naming the old password).
   */
  private maskPrevious(previous: unknown): void {
    if (previous !== null && previous !== undefined) this.log.addSecrets([String(previous)]);
  }

  /** The audit trail of settings: one info line per change, naming who (uid, and SUDO_USER). */
  private audit(verb: 'set' | 'unset', changes: SettingChange[]): SettingChange[] {
    for (const line of auditLines(verb, changes, this.env)) this.log.info(line);
    return changes;
  }

  // --- server ---------------------------------------------------------------------------------

  async getMode(): Promise<ModeInfo> {
    const config = this.config();
    const state = await this.store.read();
    return modeInfo(config, state);
  }

  /** Secrets are shown only to root or the owner of the state dir. */
  private checkMayReveal(): void {
    const uid = process.getuid?.() ?? 0;
    if (uid === 0) return;
    let owner: number | null = null;
    try {
      owner = statSync(this.stateDir).uid;
    } catch {
      // no state dir yet: only ini defaults, still secrets
    }
    if (owner !== uid) throw new PermissionDeniedError('--reveal shows secrets only to root or the owner of the state dir', 'run as root');
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
    return this.startRun({ ...options, action: 'refresh' }, options, (ctx, request) => this.refreshRun(ctx, request));
  }

  private async refreshRun(ctx: RunContext, request: RunRequest): Promise<RunOutcome | null> {
    const state = await ctx.store.read();
    // A run waiting for its reboot (a provision too) is resumed by the timer's refresh.
    if (state.provisioned_at === null && !state.paused_run) {
      // A provision asked for and never succeeded is run again, as os-collect-config re-runs
      // os-refresh-config until it succeeds; never asked: nothing to do.
      const asked = state.provision_requested;
      if (!asked) return null;
      ctx.log.info(`server.refresh: the provision asked for at ${asked.at} never succeeded; provisioning again${asked.products ? ` (products ${asked.products.join(', ')})` : ''}`);
      return performRun(ctx, { ...request, action: 'provision', ...(asked.products ? { products: asked.products } : {}) });
    }
    return performRun(ctx, request);
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

  /** Every run command: the disable gate, the run (a refusal recorded), then the metrics whatever happened (none for a dry run). */
  private startRun<T extends RunOutcome | null = RunOutcome>(request: RunRequest, gate: RunGate, start?: (ctx: RunContext, request: RunRequest) => Promise<T>): Promise<T> {
    return this.withMetrics(
      'run',
      async () => {
        await this.checkEnabled(gate);
        return this.run(request, start);
      },
      request.dryRun,
    );
  }

  /** The gate of every run command: 75 while disabled, unless a dry run or forced (run/disable.ts). */
  async checkEnabled(gate: RunGate = {}): Promise<void> {
    // A config or state.json that cannot be read is the run's to report (and record as refused).
    const state = await Promise.resolve()
      .then(() => this.store.read())
      .catch(() => null);
    if (state) assertEnabled(state, gate, this.log);
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

  /**
   * Every run command starts here: a refusal before its first step (73, 77, 78, a plan refusal)
   * is recorded as a run and thrown with its exit code (run/refusal.ts).
   */
  private async run<T extends RunOutcome | null = RunOutcome>(request: RunRequest, start: (ctx: RunContext, request: RunRequest) => Promise<T> = (ctx, r) => performRun(ctx, r) as Promise<T>): Promise<T> {
    const startedAt = new Date();
    let ctx: RunContext | null = null;
    try {
      ctx = this.runContext();
      return await start(ctx, request);
    } catch (err) {
      throw await settleRefusal(err, request, startedAt, ctx, { configFile: this.configFile, flags: this.options, env: this.env, cwd: this.cwd, defaultStateDir: defaultPaths.stateDir, commandLine: this.commandLine, log: this.log });
    }
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
    const journals = new JournalStore(this.stateDir);
    if (options.runs === undefined) return { run: blameRun(await journals.read(options.id ?? 'last')) };
    const recent = (await journals.recent(options.runs, (problem) => this.log.warn(problem))).filter((j) => j.status !== 'running');
    if (recent.length === 0) throw new DataError('no run has been recorded yet', 'run bootstrap server.provision first');
    return { runs: recent.length, steps: blameRuns(recent) };
  }

  /**
   * `server.facts`: the stored facts (all, or those named); collected now with `refresh`, or when
   * none were ever collected. Collecting takes no run lock and runs explorer.d.
   */
  async facts(options: { names?: string[]; refresh?: boolean } = {}): Promise<FactsReport> {
    const stored = options.refresh ? null : await new FactsStore(this.stateDir).read();
    const report: FactsReport = stored ? { doc: stored, explorers: [], failure: null, collected: false } : { ...(await collectFacts(this.runContext())), collected: true };
    return selectFacts(report, options.names ?? []);
  }

  /** Whether the run `id` is going on now (its agent holds the run lock), for a `running` journal. */
  async isRunning(id: string): Promise<boolean> {
    const probe = await this.runLock.probe();
    return probe.state === 'held' && probe.owner?.runId === id;
  }

  // --- heartbeats -------------------------------------------------------------------------------

  /** The checks named (all when none). Unknown names are refused with the names that exist. */
  heartbeatSpecs(names: string[] = []): HeartbeatSpec[] {
    const beats = this.config().heartbeats;
    if (names.length === 0) return [...beats.values()];
    return names.map((n) => {
      const spec = beats.get(n);
      if (!spec) throw new DataError(`unknown heartbeat '${n}'`, describeChoices(n, [...beats.keys()]));
      return spec;
    });
  }

  /** `heartbeat.get`: runs the named checks (all when none) in parallel, whatever the mode; changes nothing. */
  async heartbeatGet(names: string[] = []): Promise<Checkup> {
    const specs = trustedChecks({ config: this.config(), env: this.env, log: this.log }, this.heartbeatSpecs(names));
    await registerSecrets({ config: this.config(), log: this.log, store: this.store });
    return runCheckup(specs, this.env, this.log.masker);
  }

  /** `heartbeat.checkup`: every check of the mode in force in parallel; the result is kept as last_checkup. */
  heartbeatCheckup(options: { report?: boolean } = {}): Promise<Checkup> {
    return this.withMetrics('heartbeat', () => this.checkup(options));
  }

  private async checkup(options: { report?: boolean }): Promise<Checkup> {
    if (options.report) readSecret(this.config().callback.secretFile); // refuse a bad key before checking anything
    const specs = trustedChecks({ config: this.config(), env: this.env, log: this.log }, this.heartbeatSpecs());
    await registerSecrets({ config: this.config(), log: this.log, store: this.store });
    // The checks of the mode in force only ([heartbeat.NAME] modes); the others are listed as not run.
    const inForce = (await this.store.read()).mode ?? this.config().server.defaultMode;
    const checkup = await runCheckupOfMode(specs, inForce, this.env, this.log.masker);
    const state = await this.store.update(this.commandLine, (s) => {
      s.last_checkup = checkup;
      return s;
    });
    if (options.report) {
      const config = this.config();
      // A disabled server's checkups say so: the receiver sees why runs stopped.
      const body = { ...checkupCallback(newRunId(), config.server.name, state.mode ?? config.server.defaultMode, enabledVersions(effectiveProducts(config, state)), checkup, successOf(state)), disabled: state.disabled ?? null };
      if (!this.callbacks.target()) this.log.warn('--report: no [callback] url is configured; nothing was sent');
      await this.callbacks.report(body);
    }
    return checkup;
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

  async status(options: { waitMs?: number | undefined } = {}): Promise<StatusReport> {
    const lock = this.runLock;
    const until = Date.now() + (options.waitMs ?? 0);
    let probe = await lock.probe();
    while (probe.state === 'held' && Date.now() < until) {
      await sleep(Math.min(200, until - Date.now()));
      probe = await lock.probe();
    }
    const { config, state, products } = await this.load();
    const { mode, origin } = modeInfo(config, state);
    return {
      server: config.server.name,
      config: config.file,
      stateDir: this.stateDir,
      mode,
      modeOrigin: origin,
      provisioned: state.provisioned_at !== null,
      provisionedAt: state.provisioned_at,
      products: products.map((p) => ({ name: p.name, version: p.version, declared_version: p.declared_version, enabled: p.enabled })),
      lastRun: state.last_run,
      lastSuccess: successOf(state).last_success,
      failedRunsSinceSuccess: successOf(state).failed_runs_since_success,
      lock: { state: probe.state, owner: probe.state === 'free' ? null : probe.owner, path: lock.path },
      lastCheckup: state.last_checkup,
      callbacks: await new Outbox(this.stateDir).counts(),
      pausedRun: state.paused_run ?? null,
      disabled: state.disabled ?? null,
    };
  }

  /** `server.status --check`: what a monitor alerts on (status/); the run lock is probed, never taken. */
  statusCheck(options: { maxAgeMs?: number | undefined; now?: number } = {}): Promise<StatusCheck> {
    return probeStatus({ store: this.store, stateDir: this.stateDir, runLock: this.runLock }, options);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function modeInfo(config: Config, state: StateDoc): ModeInfo {
  return { mode: state.mode ?? config.server.defaultMode, origin: state.mode ? 'set' : 'default', modes: config.server.modes };
}
