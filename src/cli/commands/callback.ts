// callback.flush: deliver what waits in the callback outbox.

import { ExitCode } from '../../errors.js';
import type { Command } from '../context.js';

export const callbackFlush: Command = {
  usage: 'callback.flush',
  describe: 'deliver the callbacks that wait in the outbox, oldest first; report delivered / still waiting / dead',
  examples: [['$0 callback.flush --json', 'after the provisioning service was down']],
  async run(ctx) {
    const report = await ctx.agent().flushCallbacks({ lockWaitMs: 30_000 });
    ctx.exitCode = report.waiting.length ? ExitCode.failed : ExitCode.ok;
    const human = report.busy
      ? 'another flush is running; nothing was sent'
      : `${report.delivered.length} delivered, ${report.waiting.length} still waiting, ${report.dead.length} refused for good (moved to outbox/dead/)`;
    ctx.print(human, report);
  },
};
