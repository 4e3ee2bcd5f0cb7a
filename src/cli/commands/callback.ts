// callback.flush: deliver what waits in the callback outbox (--requeue-dead: and what was refused).

import { ExitCode } from '../../errors.js';
import type { Command } from '../context.js';

export const callbackFlush: Command = {
  usage: 'callback.flush',
  describe: "deliver the callbacks that wait in the outbox, each receiver's oldest first; report delivered / still waiting / dead",
  examples: [
    ['$0 callback.flush --json', 'after the provisioning service was down'],
    ['$0 callback.flush --requeue-dead', 'after fixing what made the receiver refuse them (a secret, a URL): send the dead ones again'],
  ],
  builder: (y) => y.option('requeue-dead', { type: 'boolean', describe: 'first move the callbacks in outbox/dead/ back to the outbox, to be sent again' }),
  async run(ctx, args) {
    const report = await ctx.agent().flushCallbacks({ lockWaitMs: 30_000, requeueDead: Boolean(args['requeue-dead']) });
    ctx.exitCode = report.waiting.length ? ExitCode.failed : ExitCode.ok;
    const extra = [report.requeued.length ? `${report.requeued.length} requeued from outbox/dead/` : '', report.superseded.length ? `${report.superseded.length} older checkup report(s) dropped` : ''].filter(Boolean);
    const human = report.busy
      ? 'another flush is running; nothing was sent'
      : `${[...extra, `${report.delivered.length} delivered`].join(', ')}, ${report.waiting.length} still waiting, ${report.dead.length} moved to outbox/dead/ (refused, or older than [callback] max_age)`;
    ctx.print(human, report);
  },
};
