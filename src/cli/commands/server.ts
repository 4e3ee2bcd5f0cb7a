// The server commands: server.mode, server.provision, server.refresh, server.resume (each a run,
// but for printing or committing the mode), server.facts, server.status (and its --check), and
// server.disable / server.enable.

import { maxDurationMs, parseDuration } from '../../config/config.js';
import { DisabledError, ExitCode, UsageError } from '../../errors.js';
import type { StatusCheck } from '../../status/check.js';
import type { Command, CommandContext } from '../context.js';
import { formatFacts, formatStatus } from '../format.js';
import { factsJson, statusJson } from '../json.js';
import { detailedOption, forceOption, labelOption, parseWait, runAndReport, runOptions, runRequest, waitOption } from '../run-command.js';

export const serverMode: Command = {
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
      .option('detailed-exitcodes', detailedOption)
      .option('force', forceOption),
  async run(ctx, args) {
    const agent = ctx.agent();
    const mode = args['mode'] as string | undefined;
    if (mode === undefined) {
      const info = await agent.getMode();
      ctx.print(info.mode, info);
      return;
    }
    // --no-apply changes state.json only (as product.set without --apply): allowed while disabled.
    if (args['no-apply']) {
      const info = await agent.commitMode(mode);
      ctx.print(`mode ${info.mode} (committed without running the pipeline)`, info);
      return;
    }
    await runAndReport(ctx, (signals) => agent.changeMode({ mode, waitMs: parseWait(args['wait']), label: args['label'] as string | undefined, force: Boolean(args['force']), ...signals }), Boolean(args['detailed-exitcodes']));
  },
};

export const serverProvision: Command = {
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
};

export const serverRefresh: Command = {
  usage: 'server.refresh',
  describe: "re-apply the configuration (action refresh); the systemd timer's command",
  examples: [['$0 server.refresh --wait=60 -q', 'what the timer runs']],
  builder: (y) => runOptions(y),
  async run(ctx, args) {
    const outcome = await whileDisabledOk(ctx, () => runAndReport(ctx, (signals) => ctx.agent().refresh({ ...runRequest(args), ...signals }), Boolean(args['detailed-exitcodes'])));
    if (outcome === 'disabled') return;
    if (outcome === null) ctx.print('this server was never provisioned; nothing to refresh (run bootstrap server.provision)', { id: null, status: 'not-provisioned', exit_code: ExitCode.ok });
  },
};

export const serverResume: Command = {
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
      .option('detailed-exitcodes', detailedOption)
      .option('force', forceOption),
  async run(ctx, args) {
    const abandon = Boolean(args['abandon']);
    const resume = () => runAndReport(ctx, (signals) => ctx.agent().resume({ abandon, waitMs: parseWait(args['wait']), force: Boolean(args['force']), ...signals }), Boolean(args['detailed-exitcodes']));
    // At boot (bootstrap-resume.service) a disabled server stays as it is, without a failed unit;
    // --abandon is an operator's (backouts, error.d): 75 as any run command.
    const outcome = abandon ? await resume() : await whileDisabledOk(ctx, resume);
    if (outcome === 'disabled') return;
    if (outcome?.status === 'nothing') ctx.print('no run waits for a reboot; nothing to resume', { id: null, status: 'nothing', exit_code: ExitCode.ok });
  },
};

export const serverFacts: Command = {
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
};

export const serverStatus: Command = {
  usage: 'server.status',
  describe: 'mode, provisioning, products, last run, lock holder, last heartbeat, pending callbacks, disabled; --check: a monitoring probe',
  examples: [
    ['$0 server.status --json', 'for scripts and Ansible'],
    ['$0 server.status --check --max-age 2h', 'exit 0 healthy, 1 with one line per problem (Nagios, Icinga)'],
  ],
  builder: (y) =>
    y
      .option('wait', waitOption)
      .option('check', { type: 'boolean', describe: 'a monitoring probe: exit 0 when healthy, else 1 and one line per problem' })
      .option('max-age', { type: 'string', describe: 'with --check: the oldest last success that is no problem (default 35m: twice the refresh timer\'s interval plus its random delay)' }),
  async run(ctx, args) {
    if (args['check']) return statusCheck(ctx, args);
    if (args['max-age'] !== undefined) throw new UsageError('--max-age is for --check', 'add --check');
    const status = await ctx.agent().status({ waitMs: parseWait(args['wait']) });
    ctx.print(formatStatus(status), statusJson(status));
  },
};

export const serverDisable: Command = {
  usage: 'server.disable',
  describe: 'stop runs, with a reason, until server.enable: the timer\'s server.refresh then exits 0 doing nothing, other run commands exit 75 unless --force',
  examples: [
    ['$0 server.disable --reason "kernel upgrade, ticket OPS-123"', 'stop runs during maintenance'],
    ['$0 server.status --check', 'shows it (and exits 1) until server.enable'],
  ],
  builder: (y) => y.option('reason', { type: 'string', describe: 'why: one line, 1 to 500 characters (required); secrets of the config are masked' }),
  async run(ctx, args) {
    const { disabled, previous } = await ctx.agent().disable(args['reason'] as string);
    const replaced = previous ? `\n(it replaces: ${DisabledError.line(previous)})` : '';
    ctx.print(`${DisabledError.line(disabled)}${replaced}`, { disabled, previous });
  },
};

export const serverEnable: Command = {
  usage: 'server.enable',
  describe: 'allow runs again after server.disable (not disabled: nothing to do, exit 0)',
  examples: [
    ['$0 server.enable', 'end the maintenance'],
    ['$0 server.enable --json', 'for scripts: {"enabled": true, "was": …}'],
  ],
  async run(ctx) {
    const was = await ctx.agent().enable();
    ctx.print(was ? `enabled (was ${DisabledError.line(was)})` : 'not disabled; nothing to do', { enabled: true, was });
  },
};

/**
 * The timer's refresh and the boot's resume: a disabled server is no failure of theirs. The one
 * line, exit 0, nothing run (no lock taken: the gate comes first).
 */
async function whileDisabledOk<T>(ctx: CommandContext, start: () => Promise<T>): Promise<T | 'disabled'> {
  try {
    return await start();
  } catch (err) {
    if (!(err instanceof DisabledError)) throw err;
    ctx.exitCode = ExitCode.ok;
    ctx.print(err.message, { id: null, status: 'disabled', exit_code: ExitCode.ok, disabled: err.disabled });
    return 'disabled';
  }
}

/** `server.status --check [--max-age D]`: one line per problem and exit 1, or an ok line and 0. */
async function statusCheck(ctx: CommandContext, args: Record<string, unknown>): Promise<void> {
  if (args['wait'] !== undefined) throw new UsageError('--check never waits: a run going on is no problem, and a monitor wants its answer now', 'leave out --wait');
  const check = await ctx.agent().statusCheck({ maxAgeMs: parseMaxAge(args['max-age']) });
  ctx.exitCode = check.ok ? ExitCode.ok : ExitCode.failed;
  ctx.print(formatCheck(check), checkJson(check));
}

/** --max-age: a positive duration (90, 30s, 45m, 2h, 1d) up to 24 days, else 64. */
export function parseMaxAge(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(String(value));
  if (ms === null || ms <= 0 || ms > maxDurationMs) throw new UsageError(`--max-age ${String(value).slice(0, 40)}: not a positive duration up to 24 days`, 'write seconds, or a number with a unit: 90, 30m, 2h, 1d');
  return ms;
}

function formatCheck(check: StatusCheck): string {
  if (!check.ok) return check.problems.map((p) => p.message).join('\n');
  const s = check.lastSuccess!;
  return `ok: last success ${s.finished_at} (${s.action}, run ${s.id})`;
}

function checkJson(check: StatusCheck) {
  return { ok: check.ok, problems: check.problems, last_success: check.lastSuccess, max_age_seconds: Math.round(check.maxAgeMs / 1000) };
}
