// phases.list: the plan of the phases dir, with the same verdict as a run.

import type { Command } from '../context.js';
import { formatPlan } from '../format.js';
import { planJson } from '../json.js';

export const phasesList: Command = {
  usage: 'phases.list',
  describe: "the plan: base dir, each phase's steps in run order with their .check/.backout, and every skipped file with the reason",
  examples: [['$0 phases.list --phases-dir /opt/os-refresh-config', 'look at an existing os-refresh-config tree']],
  async run(ctx) {
    const agent = ctx.agent();
    const plan = agent.phasesList();
    const refusal = agent.planRefusal(plan);
    ctx.print(formatPlan(plan), planJson(plan, refusal?.describe() ?? null));
    // The same verdict as a run and --dry-run: the plan is shown, and the exit code says it.
    if (refusal) {
      ctx.exitCode = refusal.exitCode;
      if (!ctx.json) ctx.io.stderr.write(`bootstrap: ${refusal.describe()}\n`);
    }
  },
};
