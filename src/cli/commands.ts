// The command table: usage, flags, examples, and how each command calls the Agent and prints.

import yargs, { type Argv } from 'yargs';
import type { Agent } from '../agent.js';
import type { RunJournal } from '../state/journal.js';
import { DataError, ExitCode, UsageError, oneLine } from '../errors.js';
import { maxDurationMs } from '../config/config.js';
import { maxValueBytes } from '../products.js';
import type { Logger } from '../log/log.js';
import type { CliIo } from './cli.js';
import { formatCheckupBrief, formatDryRun, formatJournal, formatOutcome, formatOutcomeBrief, formatPlan, formatProducts, formatRunList, formatSettingValue, formatStatus, formatCheckupTable, formatBlame, formatFacts } from './format.js';
import { countSteps, summarizeRun as runSummary } from '../state/journal.js';
import type { RunOutcome, RunRequest } from '../run/index.js';
import { installUnits } from '../units.js';
import { dryRunJson, factsJson, planJson, settingChangesJson, statusJson } from './json.js';

export interface CommandContext {
  json: boolean;
  quiet: boolean;
  io: CliIo;
  logger: Logger;
  exitCode: number;
  agent(): Agent;
  /** Progress of a run on a terminal (undefined: none). */
  progress?: ((event: { phase: string; step: string; index: number; total: number }) => void) | undefined;
  endProgress?: () => void;
  /**
   * Prints `human` on stdout (`brief` instead under -q, when given), control characters shown
   * escaped unless `verbatim`; or `data` as JSON with --json.
   */
  print(human: string, data: unknown, brief?: string, how?: { verbatim?: boolean }): void;
}

export interface Command {
  usage: string;
  describe: string;
  examples: [string, string][];
  builder?: (y: Argv) => Argv;
  run(ctx: CommandContext, args: Record<string, unknown>): Promise<void>;
}

/** `--wait[=S]`: undefined (fail at once), Infinity (bare --wait) or milliseconds. */
export function parseWait(value: unknown): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === '' || value === true) return Infinity;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n * 1000 > maxDurationMs) throw new UsageError(`--wait=${String(value).slice(0, 40)}: not a number of seconds up to 24 days`, 'use --wait or --wait=SECONDS');
  return n * 1000;
}

const waitOption = { type: 'string', describe: 'wait for a running run to finish (optionally at most S seconds: --wait=S)' } as const;

export const commands: Command[] = [
  {
    usage: 'product.get [path]',
    describe: 'effective settings of all products, one product, or one PRODUCT.SETTING',
    examples: [
      ['$0 product.get', 'every product and setting'],
      ['$0 product.get haproxy.maxconn', 'one value, for scripts'],
      ['$0 product.get haproxy --show-origin', 'where each value comes from'],
    ],
    builder: (y) =>
      y
        .positional('path', { type: 'string', describe: 'PRODUCT or PRODUCT.SETTING' })
        .option('show-origin', { type: 'boolean', describe: 'say whether each value is set, a default, or unset' })
        .option('reveal', { type: 'boolean', describe: 'show secret values instead of ********' }),
    async run(ctx, args) {
      const result = await ctx.agent().productGet({ path: args['path'] as string | undefined, reveal: Boolean(args['reveal']) });
      if (result.setting) {
        const s = result.setting;
        const human = args['show-origin'] ? `${formatSettingValue(s.value)}\t(${s.origin})` : formatSettingValue(s.value);
        // One value, for scripts: as it was set (an operator's value, not a step's text).
        ctx.print(s.value === null && !args['show-origin'] ? '' : human, s, undefined, { verbatim: true });
      } else {
        ctx.print(formatProducts(result.products, Boolean(args['show-origin'])), { products: result.products });
      }
    },
  },
  {
    usage: 'product.set <pairs..>',
    describe: 'set PRODUCT.SETTING=VALUE pairs: all are validated first, then all or none are written',
    examples: [
      ['$0 product.set haproxy.maxconn=8000 haproxy.bind_port=8080', 'two settings at once'],
      ['$0 product.set deepfiler.log_level=debug --apply', 'set, then re-apply the configuration'],
    ],
    builder: (y) =>
      y
        .positional('pairs', { type: 'string', array: true, describe: 'PRODUCT.SETTING=VALUE (VALUE may contain =), or one PRODUCT.SETTING with --stdin' })
        .option('stdin', { type: 'boolean', describe: 'read the value of the one PRODUCT.SETTING from standard input (one trailing newline removed): a secret never shows in the process list' })
        .option('apply', { type: 'boolean', describe: 'then run server.refresh' })
        .option('wait', { ...waitOption, describe: 'with --apply: wait for a running run to finish (optionally at most S seconds: --wait=S)' })
        .option('label', labelOption)
        .option('detailed-exitcodes', detailedOption),
    async run(ctx, args) {
      checkApplyOnly(args);
      let pairs = (args['pairs'] as unknown[]).map(String);
      if (args['stdin']) {
        if (pairs.length !== 1 || pairs[0]!.includes('=')) throw new UsageError('product.set --stdin takes one PRODUCT.SETTING, without =VALUE', 'e.g. printf %s "$PASSWORD" | bootstrap product.set haproxy.stats_password --stdin');
        pairs = [`${pairs[0]}=${await readStdinValue(ctx.io.stdin)}`];
      }
      const changes = await ctx.agent().productSet({ pairs });
      const human = changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)}${c.changed ? '' : ' (unchanged)'}`).join('\n');
      if (args['apply']) await applyAfterChange(ctx, args, human, settingChangesJson(changes));
      else ctx.print(human, settingChangesJson(changes));
    },
  },
  {
    usage: 'product.unset <names..>',
    describe: 'put settings back to their defaults',
    examples: [['$0 product.unset haproxy.maxconn', 'back to the default of bootstrap.ini']],
    builder: (y) =>
      y
        .positional('names', { type: 'string', array: true, describe: 'PRODUCT.SETTING' })
        .option('apply', { type: 'boolean', describe: 'then run server.refresh' })
        .option('wait', { ...waitOption, describe: 'with --apply: wait for a running run to finish (optionally at most S seconds: --wait=S)' })
        .option('label', labelOption)
        .option('detailed-exitcodes', detailedOption),
    async run(ctx, args) {
      checkApplyOnly(args);
      const changes = await ctx.agent().productUnset({ names: (args['names'] as unknown[]).map(String) });
      const human = changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)} (default${c.changed ? '' : ', unchanged'})`).join('\n');
      if (args['apply']) await applyAfterChange(ctx, args, human, settingChangesJson(changes));
      else ctx.print(human, settingChangesJson(changes));
    },
  },
  {
    usage: 'server.mode [mode]',
    describe: 'print the mode, or change it (runs the pipeline with action mode; --no-apply only commits it)',
    examples: [
      ['$0 server.mode', 'print the mode'],
      ['$0 server.mode maintenance', 'switch to maintenance'],
      ['$0 server.mode active --no-apply', 'record the mode without running anything'],
    ],
    builder: (y) =>
      y
        .positional('mode', { type: 'string', describe: 'one of [server] modes' })
        .option('no-apply', { type: 'boolean', describe: 'commit the mode without running the pipeline' })
        .option('wait', waitOption)
        .option('label', labelOption)
        .option('detailed-exitcodes', detailedOption),
    async run(ctx, args) {
      const agent = ctx.agent();
      const mode = args['mode'] as string | undefined;
      if (mode === undefined) {
        const info = await agent.getMode();
        ctx.print(info.mode, info);
        return;
      }
      if (args['no-apply']) {
        const info = await agent.commitMode(mode);
        ctx.print(`mode ${info.mode} (committed without running the pipeline)`, info);
        return;
      }
      await runAndReport(ctx, (signals) => agent.changeMode({ mode, waitMs: parseWait(args['wait']), label: args['label'] as string | undefined, ...signals }), Boolean(args['detailed-exitcodes']));
    },
  },
  {
    usage: 'server.provision',
    describe: 'record the products to run, run the pipeline (action provision), mark the server provisioned on success',
    examples: [
      ['$0 server.provision', 'provision with every declared product'],
      ['$0 server.provision --products haproxy --dry-run', 'show the plan and syntax-check the steps'],
      ['$0 server.provision --wait=600 --callback-url https://prov.example/api', 'wait up to 10 min for a running run'],
    ],
    builder: (y) =>
      runOptions(y).option('products', { type: 'string', describe: 'comma-separated products to run (default: all declared)' }),
    async run(ctx, args) {
      const products = args['products'] === undefined ? undefined : String(args['products']).split(',').map((p) => p.trim()).filter(Boolean);
      await runAndReport(ctx, (signals) => ctx.agent().provision({ ...runRequest(args), products, ...signals }), Boolean(args['detailed-exitcodes']));
    },
  },
  {
    usage: 'server.refresh',
    describe: "re-apply the configuration (action refresh); the systemd timer's command",
    examples: [['$0 server.refresh --wait=60 -q', 'what the timer runs']],
    builder: (y) => runOptions(y),
    async run(ctx, args) {
      const outcome = await runAndReport(ctx, (signals) => ctx.agent().refresh({ ...runRequest(args), ...signals }), Boolean(args['detailed-exitcodes']));
      if (outcome === null) ctx.print('this server was never provisioned; nothing to refresh (run bootstrap server.provision)', { id: null, status: 'not-provisioned', exit_code: 0 });
    },
  },
  {
    usage: 'product.upgrade <product>',
    describe: 'run the pipeline with action upgrade; the new version is recorded only on success',
    examples: [
      ['$0 product.upgrade haproxy --to 2.8', 'upgrade haproxy to 2.8'],
      ['$0 product.upgrade deepfiler', 'to the version in bootstrap.ini'],
    ],
    builder: (y) =>
      runOptions(y)
        .option('to', { type: 'string', describe: 'the new version (default: the version in bootstrap.ini)' })
        .option('allow-downgrade', { type: 'boolean', describe: 'allow a version older than the one in force' }),
    async run(ctx, args) {
      await runAndReport(ctx, (signals) =>
        ctx.agent().upgrade({ ...runRequest(args), product: String(args['product']), toVersion: args['to'] as string | undefined, allowDowngrade: Boolean(args['allow-downgrade']), ...signals }),
        Boolean(args['detailed-exitcodes']),
      );
    },
  },
  {
    usage: 'server.resume',
    describe: 'continue the run that waits for the reboot one of its steps asked for (after the reboot), or end it as failed with --abandon; nothing waiting: exit 0',
    examples: [
      ['$0 server.resume', 'what bootstrap-resume.service runs at boot'],
      ['$0 server.resume --abandon', 'give up on the waiting run: backouts, error.d, a failure callback'],
    ],
    builder: (y) =>
      y
        .option('abandon', { type: 'boolean', describe: 'end the waiting run as failed (kind reboot): backouts per [phases] backout, then error.d' })
        .option('wait', waitOption)
        .option('detailed-exitcodes', detailedOption),
    async run(ctx, args) {
      const outcome = await runAndReport(ctx, (signals) => ctx.agent().resume({ abandon: Boolean(args['abandon']), waitMs: parseWait(args['wait']), ...signals }), Boolean(args['detailed-exitcodes']));
      if (outcome?.status === 'nothing') ctx.print('no run waits for a reboot; nothing to resume', { id: null, status: 'nothing', exit_code: 0 });
    },
  },
  {
    usage: 'phases.list',
    describe: "the plan: base dir, each phase's steps in run order with their .check/.backout, and every skipped file with the reason",
    examples: [['$0 phases.list --phases-dir /opt/os-refresh-config', 'look at an existing os-refresh-config tree']],
    async run(ctx) {
      const agent = ctx.agent();
      const plan = agent.phasesList();
      const refusal = agent.planRefusal(plan);
      ctx.print(formatPlan(plan), planJson(plan, refusal?.describe() ?? null));
      // The same verdict as a run and --dry-run: the plan is shown, and the exit code says it.
      if (refusal) {
        ctx.exitCode = refusal.exitCode;
        if (!ctx.json) ctx.io.stderr.write(`bootstrap: ${refusal.describe()}\n`);
      }
    },
  },
  {
    usage: 'runs.list',
    describe: 'run history from the journals, oldest first',
    examples: [['$0 runs.list --json', 'for scripts']],
    async run(ctx) {
      const runs = await ctx.agent().runsList();
      ctx.print(formatRunList(runs), { runs: runs.map(runSummary) });
    },
  },
  {
    usage: 'runs.show [id]',
    describe: 'one run in detail: phases, steps, exit codes, durations, output tails, checks, backouts (default: the last run)',
    examples: [
      ['$0 runs.show', 'the last run'],
      ['$0 runs.show 20261121T101500Z-3fa9c1 --json', 'one run, whole journal'],
    ],
    builder: (y) =>
      y
        .positional('id', { type: 'string', describe: 'run id (or a prefix), or last' })
        .option('follow', { type: 'boolean', describe: 'a running run: print its steps as they end, until it ends (exit code: the run\'s)' }),
    async run(ctx, args) {
      const agent = ctx.agent();
      let journal = await agent.runsShow((args['id'] as string | undefined) ?? 'last');
      if (args['follow'] && journal.status === 'running') {
        journal = await follow(ctx, agent, journal);
        ctx.exitCode = journal.exit_code ?? 1;
      }
      const alive = journal.status === 'running' ? await agent.isRunning(journal.id) : null;
      ctx.print(formatJournal(journal, alive), { ...journal, ...(alive === null ? {} : { alive }) });
    },
  },
  {
    usage: 'runs.blame [id]',
    describe: "where a run spent its time: its steps, checks, .if files, explorers and backouts by duration, with their share of the run; --runs N: each one's median and worst over the last N runs",
    examples: [
      ['$0 runs.blame', 'the last run, slowest first'],
      ['$0 runs.blame --runs 20', 'median and worst of each step over the last 20 runs'],
    ],
    builder: (y) =>
      y.positional('id', { type: 'string', describe: 'run id (or a prefix), or last' }).option('runs', { type: 'number', describe: 'over the last N runs (reads at most N journals)' }),
    async run(ctx, args) {
      const n = args['runs'] as number | undefined;
      if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 10_000)) throw new UsageError('--runs: a whole number from 1 to 10000', 'e.g. --runs 20');
      if (n !== undefined && args['id'] !== undefined) throw new UsageError('runs.blame takes a run id or --runs N, not both');
      const blame = await ctx.agent().runsBlame({ id: args['id'] as string | undefined, runs: n });
      ctx.print(formatBlame(blame), blame);
    },
  },
  {
    usage: 'server.facts [names..]',
    describe: 'the facts of the last collection (built-in and explorer.d); --refresh collects them now, without a run and without the run lock',
    examples: [
      ['$0 server.facts', 'every fact'],
      ['$0 server.facts os.id cpus', 'some, one per line'],
      ['$0 server.facts --refresh --json', 'collect now (runs explorer.d), for scripts'],
    ],
    builder: (y) =>
      y.positional('names', { type: 'string', array: true, describe: 'fact names (os.id, cpus, an explorer\'s name …)' }).option('refresh', { type: 'boolean', describe: 'collect them now (runs explorer.d) and store them in facts.json' }),
    async run(ctx, args) {
      const names = ((args['names'] as unknown[] | undefined) ?? []).map(String);
      const report = await ctx.agent().facts({ names, refresh: Boolean(args['refresh']) });
      if (report.failure) {
        ctx.exitCode = ExitCode.failed;
        if (!ctx.json) ctx.io.stderr.write(`bootstrap: ${report.failure}\n`);
      }
      ctx.print(formatFacts(report.doc, names.length > 0), factsJson(report));
    },
  },
  {
    usage: 'heartbeat.get [names..]',
    describe: 'run the named checks (all when none) and print each result; exit 0 only if all are healthy',
    examples: [
      ['$0 heartbeat.get haproxy', 'is haproxy healthy?'],
      ['$0 heartbeat.get --json', 'every check, for scripts'],
    ],
    builder: (y) => y.positional('names', { type: 'string', array: true, describe: 'heartbeat names ([heartbeat.NAME] sections)' }),
    async run(ctx, args) {
      const checkup = await ctx.agent().heartbeatGet(((args['names'] as unknown[] | undefined) ?? []).map(String));
      ctx.exitCode = checkup.healthy ? 0 : 1;
      ctx.print(formatCheckupTable(checkup), checkup, formatCheckupBrief(checkup));
    },
  },
  {
    usage: 'heartbeat.checkup',
    describe: 'all checks in parallel, bounded by their timeouts; kept as the last checkup; exit 0 only if all are healthy',
    examples: [['$0 heartbeat.checkup --report', 'what the heartbeat timer runs: check, then report to the provisioning service']],
    builder: (y) => y.option('report', { type: 'boolean', describe: 'post the result as a callback' }),
    async run(ctx, args) {
      const checkup = await ctx.agent().heartbeatCheckup({ report: Boolean(args['report']) });
      ctx.exitCode = checkup.healthy ? 0 : 1;
      ctx.print(formatCheckupTable(checkup), checkup, formatCheckupBrief(checkup));
    },
  },
  {
    usage: 'callback.flush',
    describe: 'deliver the callbacks that wait in the outbox, oldest first; report delivered / still waiting / dead',
    examples: [['$0 callback.flush --json', 'after the provisioning service was down']],
    async run(ctx) {
      const report = await ctx.agent().flushCallbacks({ lockWaitMs: 30_000 });
      ctx.exitCode = report.waiting.length ? 1 : 0;
      const human = report.busy
        ? 'another flush is running; nothing was sent'
        : `${report.delivered.length} delivered, ${report.waiting.length} still waiting, ${report.dead.length} refused for good (moved to outbox/dead/)`;
      ctx.print(human, report);
    },
  },
  {
    usage: 'server.status',
    describe: 'mode, provisioning, products, last run, lock holder, last heartbeat, pending callbacks',
    examples: [['$0 server.status --json', 'for scripts and Ansible']],
    builder: (y) => y.option('wait', waitOption),
    async run(ctx, args) {
      const status = await ctx.agent().status({ waitMs: parseWait(args['wait']) });
      ctx.print(formatStatus(status), statusJson(status));
    },
  },
  {
    usage: 'units.install',
    describe: 'install the systemd units (refresh and heartbeat services and timers) with ExecStart pointing at this CLI',
    examples: [
      ['$0 units.install', 'on a server; then enable them (the command is printed)'],
      ['$0 units.install --dir /tmp/units --no-reload', 'look at them first'],
    ],
    builder: (y) =>
      y
        .option('dir', { type: 'string', describe: 'where to write them (default /etc/systemd/system)' })
        .option('bin', { type: 'string', describe: 'the bootstrap command to run (default: this one)' })
        .option('no-reload', { type: 'boolean', describe: 'do not run systemctl daemon-reload' }),
    async run(ctx, args) {
      const env = ctx.io.env;
      const paths = {
        config: (args['config'] as string | undefined) ?? (env['BOOTSTRAP_CONFIG'] || undefined),
        stateDir: (args['state-dir'] as string | undefined) ?? (env['BOOTSTRAP_STATE_DIR'] || undefined),
        phasesDir: (args['phases-dir'] as string | undefined) ?? (env['BOOTSTRAP_PHASES_DIR'] || env['OS_REFRESH_CONFIG_BASE_DIR'] || undefined),
      };
      const report = await installUnits({ dir: args['dir'] as string | undefined, bin: (args['bin'] as string | undefined) ?? process.argv[1]!, reload: !args['no-reload'], paths });
      const next = 'systemctl enable bootstrap-resume.service && systemctl enable --now bootstrap-refresh.timer bootstrap-heartbeat.timer';
      ctx.print(`${report.written.map((f) => `wrote ${f}`).join('\n')}\nExecStart uses ${report.bin}${report.reloaded ? '; systemd reloaded' : ''}\nnext: ${next}`, report);
    },
  },
  {
    usage: 'completion [kind] [arg]',
    describe: 'print a completion script for bash (source it, or save it to /etc/bash_completion.d/bootstrap), or for zsh with --shell zsh',
    examples: [
      ['$0 completion > /etc/bash_completion.d/bootstrap', 'install completion for bash'],
      ['$0 completion --shell zsh > ~/.zfunc/bootstrap.zsh', 'for zsh (through bashcompinit)'],
    ],
    builder: (y) =>
      y
        .positional('kind', { type: 'string', describe: 'with --words: products, settings, values, heartbeats, modes or flags' })
        .positional('arg', { type: 'string', describe: 'with --words: the PRODUCT.SETTING (values) or the command (flags)' })
        .option('shell', { type: 'string', choices: ['bash', 'zsh'], describe: 'the shell (default bash)' })
        .option('words', { type: 'boolean', hidden: true, describe: 'print the words to complete, for the script' }),
    async run(ctx, args) {
      if (!args['words']) {
        const script = completionScript(commands.map((c) => c.usage.split(' ')[0]!));
        ctx.io.stdout.write(args['shell'] === 'zsh' ? `# zsh completion for bootstrap: source it from ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n${script}` : script);
        return;
      }
      ctx.io.stdout.write(`${completionWords(ctx, String(args['kind'] ?? 'settings'), args['arg'] as string | undefined).join('\n')}\n`);
    },
  },
];

/**
 * The value for `product.set --stdin`: all of standard input with one trailing newline removed,
 * read up to the largest value a step's environment can take (and refused past it).
 */
async function readStdinValue(stdin: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!stdin) throw new UsageError('--stdin: no standard input');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > maxValueBytes) throw new DataError(`--stdin: the value is longer than ${maxValueBytes} bytes, the most a step's environment can take`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function runOptions(y: Argv): Argv {
  return y
    .option('dry-run', { type: 'boolean', describe: 'change nothing: print the plan and syntax-check sh/bash steps' })
    .option('wait', waitOption)
    .option('timeout', { type: 'number', describe: 'bound on the whole run, in seconds (default: [phases] run_timeout)' })
    .option('callback-url', { type: 'string', describe: 'where to report the outcome (default: [callback] url)' })
    .option('label', labelOption)
    .option('detailed-exitcodes', detailedOption);
}

const labelOption = { type: 'string', describe: 'a label for this run (a rollout id, a batch): in its journal, callback and BOOTSTRAP_LABEL' } as const;

const detailedOption = { type: 'boolean', describe: 'exit 2 when the run succeeded and steps reported changes, or paused for a reboot (0: no change reported, 1: failure)' } as const;

function runRequest(args: Record<string, unknown>) {
  const timeout = args['timeout'] as number | undefined;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0 && timeout * 1000 <= maxDurationMs)) throw new UsageError('--timeout: not a positive number of seconds up to 24 days (2073600)');
  return {
    dryRun: Boolean(args['dry-run']),
    waitMs: parseWait(args['wait']),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    callbackUrl: args['callback-url'] as string | undefined,
    label: args['label'] as string | undefined,
  };
}

type RunSignals = Pick<RunRequest, 'signal' | 'cleanupSignal' | 'onStep'>;

/**
 * Runs a pipeline command with SIGINT/SIGTERM wired to it (first: stop the run, which then runs
 * error.d; second: stop the clean-up too), prints the outcome, sets the exit code.
 */
async function runAndReport(ctx: CommandContext, start: (signals: RunSignals) => Promise<RunOutcome | null>, detailed = false, extra: Record<string, unknown> = {}): Promise<RunOutcome | null> {
  const run = new AbortController();
  const cleanup = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!run.signal.aborted) {
      ctx.logger.warn(`${signal}: stopping the run (again to stop clean-up too)`);
      run.abort();
    } else cleanup.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: RunOutcome | null;
  try {
    outcome = await start({ signal: run.signal, cleanupSignal: cleanup.signal, onStep: ctx.progress });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.endProgress?.();
  }
  if (outcome === null) return null;
  ctx.exitCode = outcome.exitCode;
  if (outcome.status === 'nothing') return outcome;
  // Puppet's --detailed-exitcodes: 2 = the server changed: a success with changes reported (a
  // step that reports nothing counts as unchanged), or a pause for a reboot, whatever was
  // reported (the server reboots): 0 never reads as "nothing changed" when something did.
  const changed = outcome.status === 'rebooting' || (outcome.status === 'success' && outcome.journal !== null && countSteps(outcome.journal).changed > 0);
  if (detailed && changed) ctx.exitCode = ExitCode.changes;
  if (outcome.dryRun) ctx.print(formatDryRun(outcome.dryRun), dryRunJson(outcome.dryRun));
  else if (outcome.journal) ctx.print(formatOutcome(outcome.journal, outcome.journalPath), { server: outcome.journal.server, ...runSummary(outcome.journal), journal: outcome.journalPath, ...extra }, formatOutcomeBrief(outcome.journal));
  return outcome;
}

/**
 * `runs.show ID --follow`: prints each step of a running run as its record appears, until the
 * run ends (its final journal) or its agent is gone (the next run records it as failed).
 */
async function follow(ctx: CommandContext, agent: Agent, first: RunJournal): Promise<RunJournal> {
  let journal = first;
  let printed = 0;
  for (;;) {
    const steps = journal.phases.flatMap((p) => p.steps.map((s) => ({ phase: p.phase, s })));
    if (!ctx.json) for (const { phase, s } of steps.slice(printed)) ctx.io.stdout.write(`${oneLine(`${phase}/${s.name}: ${s.status} ${s.message} (${s.duration_ms} ms)`)}\n`);
    printed = steps.length;
    if (journal.status !== 'running') return journal;
    if (!(await agent.isRunning(journal.id))) {
      // Between its last live write and its final journal, or gone: look once more.
      const again = await agent.runsShow(journal.id);
      if (again.status !== 'running') journal = again;
      else return again;
      continue;
    }
    await new Promise((r) => setTimeout(r, 500));
    journal = await agent.runsShow(journal.id);
  }
}

/**
 * `--apply` after product.set/unset: the settings are printed first, then the run. With --json,
 * one document: the run's, with the settings' `changed`/`unchanged` under `settings` (scripts
 * and the fleet playbook parse one object).
 */
/** --wait, --label and --detailed-exitcodes of product.set/unset are about the run of --apply. */
function checkApplyOnly(args: Record<string, unknown>): void {
  if (args['apply']) return;
  const given = ['wait', 'label', 'detailed-exitcodes'].filter((k) => args[k] !== undefined && args[k] !== false);
  if (given.length) throw new UsageError(`--${given[0]} is for the run of --apply`, 'add --apply, or leave it out');
}

async function applyAfterChange(ctx: CommandContext, args: Record<string, unknown>, human: string, settings: ReturnType<typeof settingChangesJson>): Promise<void> {
  if (!ctx.json) ctx.print(human, null);
  const request = { waitMs: parseWait(args['wait']), label: args['label'] as string | undefined };
  const outcome = await runAndReport(ctx, (signals) => ctx.agent().refresh({ ...request, ...signals }), Boolean(args['detailed-exitcodes']), { settings });
  if (outcome === null) {
    ctx.logger.warn('--apply: this server was never provisioned; the setting is saved and will apply at provisioning');
    if (ctx.json) ctx.print('', { id: null, status: 'not-provisioned', exit_code: 0, settings });
  }
}

/** The words `completion --words KIND [ARG]` gives the script: what fits where the cursor is. */
function completionWords(ctx: CommandContext, kind: string, arg: string | undefined): string[] {
  if (kind === 'flags') {
    // The command's own options, as its builder declares them (positionals are not flags).
    const command = commands.find((c) => c.usage.split(' ')[0] === arg);
    const built = command?.builder?.(yargs([])) as unknown as { getOptions(): { key: Record<string, unknown>; hiddenOptions: string[] } } | undefined;
    const opts = built?.getOptions();
    const positional = command ? [...command.usage.matchAll(/[<[](\w+)/g)].map((m) => m[1]!) : [];
    const own = opts ? Object.keys(opts.key).filter((k) => k.length > 1 && !positional.includes(k) && !opts.hiddenOptions.includes(k) && !['help', 'version', '$0'].includes(k)) : [];
    return [...own, 'config', 'state-dir', 'phases-dir', 'json', 'log-level', 'quiet', 'verbose', 'help'].map((f) => `--${f}`);
  }
  const config = ctx.agent().config();
  const products = [...config.products.values()];
  switch (kind) {
    case 'products':
      return products.map((p) => p.name);
    case 'settings':
      return products.flatMap((p) => [...p.settings.keys()].map((s) => `${p.name}.${s}`));
    case 'heartbeats':
      return [...config.heartbeats.keys()];
    case 'modes':
      return config.server.modes;
    case 'values': {
      const [product, setting] = (arg ?? '').split('.');
      const type = config.products.get(product ?? '')?.settings.get(setting ?? '')?.type;
      if (type?.kind === 'enum') return type.values;
      if (type?.kind === 'bool') return ['true', 'false'];
      return [];
    }
    default:
      throw new UsageError(`completion --words: unknown kind '${kind}'`, 'products, settings, values, heartbeats, modes or flags');
  }
}

function completionScript(names: string[]): string {
  return `# bash completion for bootstrap: source it, or save it as /etc/bash_completion.d/bootstrap
_bootstrap_words() { "\${BOOTSTRAP_COMPLETION_BIN:-bootstrap}" completion --words "$@" 2>/dev/null; }
_bootstrap_complete() {
  local cmd=\${COMP_WORDS[1]} line=\${COMP_LINE:0:$COMP_POINT}
  local word=\${line##*[[:space:]]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$word"))
    return
  fi
  case "$word" in
    -*) COMPREPLY=($(compgen -W "$(_bootstrap_words flags "$cmd")" -- "$word")); return ;;
  esac
  case "$cmd" in
    product.set)
      if [[ "$word" == *=* ]]; then
        # bash splits words at '=': complete the value after it
        COMPREPLY=($(compgen -W "$(_bootstrap_words values "\${word%%=*}")" -- "\${word#*=}"))
      else
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -S = -W "$(_bootstrap_words settings)" -- "$word"))
      fi ;;
    product.get) COMPREPLY=($(compgen -W "$(_bootstrap_words products) $(_bootstrap_words settings)" -- "$word")) ;;
    product.unset) COMPREPLY=($(compgen -W "$(_bootstrap_words settings)" -- "$word")) ;;
    product.upgrade) COMPREPLY=($(compgen -W "$(_bootstrap_words products)" -- "$word")) ;;
    heartbeat.get) COMPREPLY=($(compgen -W "$(_bootstrap_words heartbeats)" -- "$word")) ;;
    server.mode) COMPREPLY=($(compgen -W "$(_bootstrap_words modes)" -- "$word")) ;;
    runs.show|runs.blame) COMPREPLY=($(compgen -W "last" -- "$word")) ;;
  esac
}
complete -o default -F _bootstrap_complete bootstrap
`;
}
