// The command table: usage, flags, examples, and how each command calls the Agent and prints.

import type { Argv } from 'yargs';
import type { Agent } from '../agent.js';
import { ExitCode, UsageError } from '../errors.js';
import type { Logger } from '../log/log.js';
import type { CliIo } from './cli.js';
import { formatProducts, formatSettingValue, formatStatus } from './format.js';

export interface CommandContext {
  json: boolean;
  quiet: boolean;
  io: CliIo;
  logger: Logger;
  exitCode: number;
  agent(): Agent;
  /** Prints `human` on stdout, or `data` as JSON with --json. */
  print(human: string, data: unknown): void;
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
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--wait=${String(value)}: not a number of seconds`, 'use --wait or --wait=SECONDS');
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
        const human = args['showOrigin'] ? `${formatSettingValue(s.value)}\t(${s.origin})` : formatSettingValue(s.value);
        ctx.print(s.value === null && !args['showOrigin'] ? '' : human, s);
      } else {
        ctx.print(formatProducts(result.products, Boolean(args['showOrigin'])), { products: result.products });
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
    builder: (y) => y.positional('pairs', { type: 'string', array: true, describe: 'PRODUCT.SETTING=VALUE (VALUE may contain =)' }).option('apply', { type: 'boolean', describe: 'then run server.refresh' }),
    async run(ctx, args) {
      const changes = await ctx.agent().productSet({ pairs: (args['pairs'] as unknown[]).map(String) });
      ctx.print(changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)}`).join('\n'), { changed: changes });
    },
  },
  {
    usage: 'product.unset <names..>',
    describe: 'put settings back to their defaults',
    examples: [['$0 product.unset haproxy.maxconn', 'back to the default of bootstrap.ini']],
    builder: (y) => y.positional('names', { type: 'string', array: true, describe: 'PRODUCT.SETTING' }).option('apply', { type: 'boolean', describe: 'then run server.refresh' }),
    async run(ctx, args) {
      const changes = await ctx.agent().productUnset({ names: (args['names'] as unknown[]).map(String) });
      ctx.print(changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)} (default)`).join('\n'), { changed: changes });
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
        .option('wait', waitOption),
    async run(ctx, args) {
      const agent = ctx.agent();
      const mode = args['mode'] as string | undefined;
      if (mode === undefined) {
        const info = await agent.getMode();
        ctx.print(info.mode, info);
        return;
      }
      parseWait(args['wait']);
      const info = await agent.commitMode(mode);
      ctx.print(`mode ${info.mode}`, info);
    },
  },
  {
    usage: 'server.status',
    describe: 'mode, provisioning, products, last run, lock holder, last heartbeat, pending callbacks',
    examples: [['$0 server.status --json', 'for scripts and Ansible']],
    builder: (y) => y.option('wait', waitOption),
    async run(ctx) {
      const status = await ctx.agent().status();
      ctx.print(formatStatus(status), status);
    },
  },
  {
    usage: 'completion',
    describe: 'print a bash completion script (source it, or save it to /etc/bash_completion.d/bootstrap)',
    examples: [['$0 completion > /etc/bash_completion.d/bootstrap', 'install completion']],
    builder: (y) => y.option('words', { type: 'boolean', hidden: true, describe: 'print product and setting names, for the script' }),
    async run(ctx, args) {
      if (!args['words']) {
        ctx.io.stdout.write(completionScript(commands.map((c) => c.usage.split(' ')[0]!)));
        return;
      }
      const products = [...ctx.agent().config().products.values()];
      const words = products.flatMap((p) => [p.name, ...[...p.settings.keys()].map((s) => `${p.name}.${s}`)]);
      ctx.io.stdout.write(`${words.join('\n')}\n`);
    },
  },
];

function completionScript(names: string[]): string {
  return `# bash completion for bootstrap: source it, or save it as /etc/bash_completion.d/bootstrap
_bootstrap_complete() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
    product.*|heartbeat.get)
      COMPREPLY=($(compgen -W "$(bootstrap completion --words 2>/dev/null)" -- "$cur"))
      ;;
    server.mode)
      COMPREPLY=($(compgen -W "$(bootstrap server.mode --json 2>/dev/null | sed -n 's/^ *"\\([a-z0-9_-]*\\)",\\{0,1\\}$/\\1/p')" -- "$cur"))
      ;;
  esac
}
complete -o default -F _bootstrap_complete bootstrap
`;
}

export { ExitCode };
