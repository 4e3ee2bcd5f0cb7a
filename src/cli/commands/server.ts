// The server commands: server.mode, server.provision, server.refresh, server.resume (each a run,
// but for printing or committing the mode), server.facts and server.status.

import { ExitCode } from '../../errors.js';
import type { Command } from '../context.js';
import { formatFacts, formatStatus } from '../format.js';
import { factsJson, statusJson } from '../json.js';
import { detailedOption, labelOption, parseWait, runAndReport, runOptions, runRequest, waitOption } from '../run-command.js';

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
    const outcome = await runAndReport(ctx, (signals) => ctx.agent().refresh({ ...runRequest(args), ...signals }), Boolean(args['detailed-exitcodes']));
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
      .option('detailed-exitcodes', detailedOption),
  async run(ctx, args) {
    const outcome = await runAndReport(ctx, (signals) => ctx.agent().resume({ abandon: Boolean(args['abandon']), waitMs: parseWait(args['wait']), ...signals }), Boolean(args['detailed-exitcodes']));
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
  describe: 'mode, provisioning, products, last run, lock holder, last heartbeat, pending callbacks',
  examples: [['$0 server.status --json', 'for scripts and Ansible']],
  builder: (y) => y.option('wait', waitOption),
  async run(ctx, args) {
    const status = await ctx.agent().status({ waitMs: parseWait(args['wait']) });
    ctx.print(formatStatus(status), statusJson(status));
  },
};
