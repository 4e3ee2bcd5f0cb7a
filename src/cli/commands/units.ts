// units.install: the systemd units, with ExecStart pointing at this CLI.

import { installUnits } from '../../units.js';
import type { Command } from '../context.js';

export const unitsInstall: Command = {
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
};
