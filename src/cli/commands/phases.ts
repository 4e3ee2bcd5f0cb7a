// phases.list: the plan of the phases dir, with the same verdict as a run; with no bootstrap.ini,
// the plan under the defaults (an os-refresh-config tree can be looked at before writing one).

import type { Agent } from '../../agent.js';
import { ConfigMissingError, type BootstrapError } from '../../errors.js';
import type { Plan } from '../../pipeline/plan.js';
import type { Command } from '../context.js';
import { formatPlan } from '../format.js';
import { planJson } from '../json.js';

export const phasesList: Command = {
  usage: 'phases.list',
  describe: "the plan: base dir, each phase's steps in run order with their .check/.backout, and every skipped file with the reason (works without a bootstrap.ini: then under the defaults)",
  examples: [
    ['$0 phases.list --phases-dir /opt/os-refresh-config', 'look at an existing os-refresh-config tree'],
    ['$0 phases.list --phases-dir /usr/libexec/os-refresh-config --config /nonexistent', 'the same before any bootstrap.ini exists: the defaults apply'],
  ],
  async run(ctx) {
    const { plan, refusal, defaults } = listPlan(ctx.agent());
    const note = defaults && `no ${defaults}: the plan under the defaults (as with [server] alone: no_shebang = refuse, allow_insecure = false)`;
    ctx.print(`${note ? `${note}\n` : ''}${formatPlan(plan)}`, { ...planJson(plan, refusal?.describe() ?? null), ...(note ? { defaults: note } : {}) });
    // The same verdict as a run and --dry-run: the plan is shown, and the exit code says it.
    if (refusal) {
      ctx.exitCode = refusal.exitCode;
      if (!ctx.json) ctx.io.stderr.write(`bootstrap: ${refusal.describe()}\n`);
    }
  },
};

/** The plan and its verdict; `defaults` names the missing bootstrap.ini when the defaults were used. */
function listPlan(agent: Agent): { plan: Plan; refusal: BootstrapError | null; defaults: string | null } {
  try {
    const plan = agent.phasesList();
    return { plan, refusal: agent.planRefusal(plan), defaults: null };
  } catch (err) {
    if (!(err instanceof ConfigMissingError)) throw err; // a broken ini is still 78: a run would refuse it
    return { ...agent.phasesListWithoutConfig(), defaults: err.file };
  }
}
