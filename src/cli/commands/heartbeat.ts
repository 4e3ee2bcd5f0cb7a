// The heartbeat commands: heartbeat.get (named checks, whatever the mode) and heartbeat.checkup
// (the checks of the mode in force, kept, reported).

import { ExitCode } from '../../errors.js';
import type { Checkup } from '../../heartbeat/types.js';
import type { Command } from '../context.js';
import { formatCheckupBrief, formatCheckupTable } from '../format.js';

export const heartbeatGet: Command = {
  usage: 'heartbeat.get [names..]',
  describe: 'run the named checks (all when none), whatever their modes, and print each result; exit 0 only if all are healthy',
  examples: [
    ['$0 heartbeat.get haproxy', 'is haproxy healthy?'],
    ['$0 heartbeat.get --json', 'every check, for scripts'],
  ],
  builder: (y) => y.positional('names', { type: 'string', array: true, describe: 'heartbeat names ([heartbeat.NAME] sections)' }),
  async run(ctx, args) {
    const checkup = await ctx.agent().heartbeatGet(((args['names'] as unknown[] | undefined) ?? []).map(String));
    ctx.exitCode = checkup.healthy ? ExitCode.ok : ExitCode.failed;
    ctx.print(formatCheckupTable(checkup), checkup, formatCheckupBrief(checkup));
  },
};

export const heartbeatCheckup: Command = {
  usage: 'heartbeat.checkup',
  describe: 'the checks of the mode in force in parallel, bounded by their timeouts; kept as the last checkup; exit 0 only if all are healthy',
  examples: [['$0 heartbeat.checkup --report', 'what the heartbeat timer runs: check, then report to the provisioning service']],
  builder: (y) => y.option('report', { type: 'boolean', describe: 'post the result as a callback' }),
  async run(ctx, args) {
    const checkup = await ctx.agent().heartbeatCheckup({ report: Boolean(args['report']) });
    ctx.exitCode = checkup.healthy ? ExitCode.ok : ExitCode.failed;
    const notRun = notRunLine(checkup);
    const table = checkup.results.length === 0 && notRun ? `no check belongs to mode ${checkup.mode}` : formatCheckupTable(checkup);
    const brief = formatCheckupBrief(checkup);
    ctx.print(notRun ? `${table}\n${notRun}` : table, checkup, notRun ? `${brief}; ${checkup.not_run!.length} not run (mode ${checkup.mode})` : brief);
  },
};

/** The checks left out by the mode in force ([heartbeat.NAME] modes), or null. */
function notRunLine(c: Checkup): string | null {
  if (!c.not_run?.length) return null;
  return `not run in mode ${c.mode}: ${c.not_run.map((n) => `${n.name} (modes ${n.modes.join(', ')})`).join(', ')}`;
}
