// The product commands: product.get, product.set, product.unset (each optionally followed by a
// run with --apply) and product.upgrade.

import { DataError, ExitCode, UsageError, toBootstrapError } from '../../errors.js';
import { maxValueBytes } from '../../products.js';
import type { Command, CommandContext } from '../context.js';
import { keptOnFailure, type SettingUndo, type SettingsRestore } from '../../settings/undo.js';
import { formatProducts, formatSettingValue } from '../format.js';
import { settingChangesJson } from '../json.js';
import { detailedOption, forceOption, labelOption, parseWait, runAndReport, runOptions, runRequest, waitOption } from '../run-command.js';

export const productGet: Command = {
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
};

/** The flags of a setting change followed by a run (--apply), shared by product.set and product.unset. */
const applyOptions = {
  apply: { type: 'boolean', describe: 'then run server.refresh' },
  wait: { ...waitOption, describe: 'with --apply: wait for a running run to finish (optionally at most S seconds: --wait=S)' },
  label: labelOption,
  'detailed-exitcodes': detailedOption,
  force: { ...forceOption, describe: 'with --apply: run even though server.disable is in force' },
  'keep-on-failure': { type: 'boolean', describe: 'with --apply: keep the new values when the run fails (default: they are put back)' },
} as const;

export const productSet: Command = {
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
      .options(applyOptions),
  async run(ctx, args) {
    await checkApplyOnly(ctx, args);
    let pairs = (args['pairs'] as unknown[]).map(String);
    if (args['stdin']) {
      if (pairs.length !== 1 || pairs[0]!.includes('=')) throw new UsageError('product.set --stdin takes one PRODUCT.SETTING, without =VALUE', 'e.g. printf %s "$PASSWORD" | bootstrap product.set haproxy.stats_password --stdin');
      pairs = [`${pairs[0]}=${await readStdinValue(ctx.io.stdin)}`];
    }
    const { changes, undo } = await ctx.agent().productSetUndoable({ pairs });
    const human = changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)}${c.changed ? '' : ' (unchanged)'}`).join('\n');
    if (args['apply']) await applyAfterChange(ctx, args, human, settingChangesJson(changes), undo);
    else ctx.print(human, settingChangesJson(changes));
  },
};

export const productUnset: Command = {
  usage: 'product.unset <names..>',
  describe: 'put settings back to their defaults',
  examples: [['$0 product.unset haproxy.maxconn', 'back to the default of bootstrap.ini']],
  builder: (y) =>
    y
      .positional('names', { type: 'string', array: true, describe: 'PRODUCT.SETTING' })
      .options(applyOptions),
  async run(ctx, args) {
    await checkApplyOnly(ctx, args);
    const { changes, undo } = await ctx.agent().productUnsetUndoable({ names: (args['names'] as unknown[]).map(String) });
    const human = changes.map((c) => `${c.product}.${c.setting} = ${formatSettingValue(c.value)} (default${c.changed ? '' : ', unchanged'})`).join('\n');
    if (args['apply']) await applyAfterChange(ctx, args, human, settingChangesJson(changes), undo);
    else ctx.print(human, settingChangesJson(changes));
  },
};

export const productUpgrade: Command = {
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
};

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

/**
 * --wait, --label, --detailed-exitcodes, --force and --keep-on-failure of product.set/unset are about the run of
 * --apply. A disabled server refuses --apply (75) before any setting is written: all or none.
 */
async function checkApplyOnly(ctx: CommandContext, args: Record<string, unknown>): Promise<void> {
  if (args['apply']) return args['force'] ? undefined : ctx.agent().checkEnabled(); // forced: the run warns
  const given = ['wait', 'label', 'detailed-exitcodes', 'force', 'keep-on-failure'].filter((k) => args[k] !== undefined && args[k] !== false);
  if (given.length) throw new UsageError(`--${given[0]} is for the run of --apply`, 'add --apply, or leave it out');
}

/**
 * `--apply` after product.set/unset: the settings are printed first, then the run. With --json,
 * one document: the run's, with the settings' `changed`/`unchanged` under `settings` (scripts
 * and the fleet playbook parse one object).
 *
 * The change and its run are one: a run that fails (a SIGTERM too) or never starts (refused: the
 * run lock held, the plan or config refused) puts the changed keys back before the outcome is
 * printed (`settings_restored`), unless --keep-on-failure. A run paused for a reboot goes on
 * after it: kept. Never provisioned: kept, applied by the provision.
 */
async function applyAfterChange(ctx: CommandContext, args: Record<string, unknown>, human: string, settings: ReturnType<typeof settingChangesJson>, undo: SettingUndo[]): Promise<void> {
  if (!ctx.json) ctx.print(human, null);
  const request = { waitMs: parseWait(args['wait']), label: args['label'] as string | undefined, force: Boolean(args['force']) };
  const extra: Record<string, unknown> = { settings };
  const restorer = settingsRestorer(ctx, undo, Boolean(args['keep-on-failure']), extra);
  let outcome: Awaited<ReturnType<typeof runAndReport>>;
  try {
    outcome = await runAndReport(
      ctx,
      async (signals) => {
        const run = await ctx.agent().refresh({ ...request, ...signals });
        if (run?.status === 'failure') await restorer.run(); // before the outcome is printed, which says so
        return run;
      },
      Boolean(args['detailed-exitcodes']),
      extra,
    );
  } catch (err) {
    const restore = await restorer.run();
    if (restore) ctx.logger.warn(`--apply: no run succeeded; ${restoreText(restore)}`);
    throw err;
  }
  const restore = restorer.result();
  if (restore && !ctx.json) ctx.print(restoreText(restore), null);
  if (outcome === null) {
    ctx.logger.warn('--apply: this server was never provisioned; the setting is saved and will apply at provisioning');
    if (ctx.json) ctx.print('', { id: null, status: 'not-provisioned', exit_code: ExitCode.ok, settings });
  }
}

/**
 * Puts the changed keys back, once (or, with --keep-on-failure, reports them kept), and adds
 * what it did to the run's --json document (`extra`): `settings_restored`, and `settings.restored`
 * and `settings.kept`. A put-back that fails is logged, and `settings_restored` is false.
 */
function settingsRestorer(ctx: CommandContext, undo: SettingUndo[], keep: boolean, extra: Record<string, unknown>) {
  let done: SettingsRestore | null | undefined; // undefined: not tried yet; null: it failed
  return {
    async run(): Promise<SettingsRestore | null> {
      if (done !== undefined) return done;
      try {
        done = keep ? keptOnFailure(undo) : await ctx.agent().restoreSettings(undo);
      } catch (err) {
        ctx.logger.error(`--apply: the settings could not be put back: ${toBootstrapError(err).message}`);
        extra['settings_restored'] = false;
        return (done = null);
      }
      extra['settings'] = { ...(extra['settings'] as object), restored: done.restored, kept: done.kept };
      extra['settings_restored'] = done.kept.length === 0;
      return done;
    },
    result: (): SettingsRestore | null => done ?? null,
  };
}

/** One line: what was put back, and what was kept and why. */
function restoreText(restore: SettingsRestore): string {
  const back = restore.restored.map((r) => `${r.product}.${r.setting} = ${formatSettingValue(r.value)}${r.origin === 'set' ? '' : ` (${r.origin})`}`);
  const kept = restore.kept.map((k) => `${k.product}.${k.setting} = ${formatSettingValue(k.value)} (${k.why === 'keep-on-failure' ? '--keep-on-failure' : 'set again by another command since'})`);
  return [back.length ? `settings put back: ${back.join(', ')}` : '', kept.length ? `settings kept: ${kept.join(', ')}` : ''].filter(Boolean).join('; ');
}
