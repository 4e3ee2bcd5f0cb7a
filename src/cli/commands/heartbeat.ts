// The heartbeat commands: heartbeat.get (named checks) and heartbeat.checkup (all, kept, reported).

import { ExitCode } from '../../errors.js';
import type { Command } from '../context.js';
import { formatCheckupBrief, formatCheckupTable } from '../format.js';

export const heartbeatGet: Command = {
  usage: 'heartbeat.get [names..]',
  describe: 'run the named checks (all when none) and print each result; exit 0 only if all are healthy',
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
  describe: 'all checks in parallel, bounded by their timeouts; kept as the last checkup; exit 0 only if all are healthy',
  examples: [['$0 heartbeat.checkup --report', 'what the heartbeat timer runs: check, then report to the provisioning service']],
  builder: (y) => y.option('report', { type: 'boolean', describe: 'post the result as a callback' }),
  async run(ctx, args) {
    const checkup = await ctx.agent().heartbeatCheckup({ report: Boolean(args['report']) });
    ctx.exitCode = checkup.healthy ? ExitCode.ok : ExitCode.failed;
    ctx.print(formatCheckupTable(checkup), checkup, formatCheckupBrief(checkup));
  },
};
