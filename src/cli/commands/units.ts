// units.install: the systemd units, with ExecStart pointing at this CLI and TimeoutStartSec
// following the ini's run_timeout; units.uninstall: removes what units.install wrote.

import { ConfigMissingError } from '../../errors.js';
import { installUnits, startTimeout, uninstallUnits } from '../../units.js';
import type { Command, CommandContext } from '../context.js';

/** [phases] run_timeout's default (4 h): used when the ini the units will read is not there yet. */
const defaultRunTimeoutMs = 4 * 3600 * 1000;

export const unitsInstall: Command = {
  usage: 'units.install',
  describe: "install the systemd units (refresh and heartbeat services and timers) with ExecStart pointing at this CLI and the refresh's TimeoutStartSec from the ini's run_timeout",
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
    const timeout = runTimeoutOf(ctx);
    const report = await installUnits({ dir: args['dir'] as string | undefined, bin: (args['bin'] as string | undefined) ?? process.argv[1]!, reload: !args['no-reload'], paths, runTimeoutMs: timeout.ms });
    const next = 'systemctl enable bootstrap-resume.service && systemctl enable --now bootstrap-refresh.timer bootstrap-heartbeat.timer';
    const started = `TimeoutStartSec=${startTimeout(timeout.ms)} (run_timeout ${timeout.from} + 15 min); after changing run_timeout, run units.install again`;
    ctx.print(`${report.written.map((f) => `wrote ${f}`).join('\n')}\nExecStart uses ${report.bin}${report.reloaded ? '; systemd reloaded' : ''}\n${started}\nnext: ${next}`, { ...report, timeout_start_sec: startTimeout(timeout.ms) });
  },
};

/** The run_timeout of the ini the units will read (--config, BOOTSTRAP_CONFIG or the default path); its default while there is none. */
function runTimeoutOf(ctx: CommandContext): { ms: number; from: string } {
  try {
    const config = ctx.agent().config();
    return { ms: config.phases.runTimeoutMs, from: `of ${config.file}` };
  } catch (err) {
    if (!(err instanceof ConfigMissingError)) throw err; // a broken ini: fix it first (78)
    return { ms: defaultRunTimeoutMs, from: `4h by default: no ${err.file} yet` };
  }
}

export const unitsUninstall: Command = {
  usage: 'units.uninstall',
  describe: 'disable and remove the systemd units units.install wrote (never a unit it did not write), then daemon-reload; running units are not stopped',
  examples: [
    ['$0 units.uninstall', 'before npm uninstall -g bootstrap-agent'],
    ['$0 units.uninstall --dir /tmp/units --no-reload', 'units installed with --dir'],
  ],
  builder: (y) =>
    y.option('dir', { type: 'string', describe: 'where they were written (default /etc/systemd/system)' }).option('no-reload', { type: 'boolean', describe: 'do not run systemctl daemon-reload' }),
  async run(ctx, args) {
    const report = uninstallUnits({ dir: args['dir'] as string | undefined, reload: !args['no-reload'] });
    const lines = [
      ...report.unlinked.map((f) => `disabled: removed ${f}`),
      ...report.removed.map((f) => `removed ${f}`),
      ...report.left.map((l) => `left ${l.path}: ${l.reason}`),
      report.removed.length ? `${report.reloaded ? 'systemd reloaded; ' : ''}units still running keep running until stopped: systemctl stop bootstrap-refresh.timer bootstrap-heartbeat.timer` : `no unit written by units.install in ${report.dir}`,
    ];
    ctx.print(lines.join('\n'), report);
  },
};
