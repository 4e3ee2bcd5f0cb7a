// The run history commands: runs.list, runs.show (and --follow of a running run), runs.blame.

import type { Agent } from '../../agent.js';
import { ExitCode, UsageError, oneLine } from '../../errors.js';
import { summarizeRun as runSummary, type RunJournal } from '../../state/journal.js';
import type { Command, CommandContext } from '../context.js';
import { formatBlame, formatJournal, formatRunList } from '../format.js';

export const runsList: Command = {
  usage: 'runs.list',
  describe: 'run history from the journals, newest first (as git log; --json: the same order), one line a run with why it failed',
  examples: [
    ['$0 runs.list | head', 'the last runs'],
    ['$0 runs.list --wide', 'failure reasons whole, not cut at 160 characters'],
    ['$0 runs.list --json', 'for scripts: runs[0] is the newest'],
  ],
  builder: (y) => y.option('wide', { type: 'boolean', describe: 'failure reasons whole (default: cut at 160 characters, marked …)' }),
  async run(ctx, args) {
    const agent = ctx.agent();
    const runs = (await agent.runsList()).reverse();
    // A `running` journal whose run holds no lock is not running: its agent is gone.
    const gone = new Set<string>();
    for (const j of runs) if (j.status === 'running' && !(await agent.isRunning(j.id))) gone.add(j.id);
    const json = runs.map((j) => ({ ...runSummary(j), ...(j.status === 'running' ? { alive: !gone.has(j.id) } : {}) }));
    ctx.print(formatRunList(runs, { wide: Boolean(args['wide']), gone }), { runs: json });
  },
};

export const runsShow: Command = {
  usage: 'runs.show [id]',
  describe: 'one run in detail: phases, steps, exit codes, durations, output tails, checks, backouts (default: the last run)',
  examples: [
    ['$0 runs.show', 'the last run'],
    ['$0 runs.show 20261121T101500Z-3fa9c1 --json', 'one run, whole journal'],
  ],
  builder: (y) =>
    y
      .positional('id', { type: 'string', describe: 'run id (or a prefix), or last' })
      .option('follow', { type: 'boolean', describe: 'a running run: print its steps as they end, until it ends (exit code: the run\'s)' }),
  async run(ctx, args) {
    const agent = ctx.agent();
    let journal = await agent.runsShow((args['id'] as string | undefined) ?? 'last');
    if (args['follow'] && journal.status === 'running') {
      journal = await follow(ctx, agent, journal);
      ctx.exitCode = journal.exit_code ?? ExitCode.failed;
    }
    const alive = journal.status === 'running' ? await agent.isRunning(journal.id) : null;
    ctx.print(formatJournal(journal, alive), { ...journal, ...(alive === null ? {} : { alive }) });
  },
};

export const runsBlame: Command = {
  usage: 'runs.blame [id]',
  describe: "where a run spent its time: its steps, checks, .if files, explorers and backouts by duration, with their share of the run, and the agent's own waits ((lock wait), (explorers), (environment.d), (health gate), (callback)); --runs N: each one's median and worst over the last N runs",
  examples: [
    ['$0 runs.blame', 'the last run, slowest first'],
    ['$0 runs.blame --runs 20', 'median and worst of each step over the last 20 runs'],
  ],
  builder: (y) =>
    y.positional('id', { type: 'string', describe: 'run id (or a prefix), or last' }).option('runs', { type: 'number', describe: 'over the last N runs (reads at most N journals)' }),
  async run(ctx, args) {
    const n = args['runs'] as number | undefined;
    if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 10_000)) throw new UsageError('--runs: a whole number from 1 to 10000', 'e.g. --runs 20');
    if (n !== undefined && args['id'] !== undefined) throw new UsageError('runs.blame takes a run id or --runs N, not both');
    const blame = await ctx.agent().runsBlame({ id: args['id'] as string | undefined, runs: n });
    ctx.print(formatBlame(blame), blame);
  },
};

/**
 * `runs.show ID --follow`: prints each step of a running run as its record appears, until the
 * run ends (its final journal) or its agent is gone (the next run records it as failed).
 */
async function follow(ctx: CommandContext, agent: Agent, first: RunJournal): Promise<RunJournal> {
  let journal = first;
  let printed = 0;
  for (;;) {
    const steps = journal.phases.flatMap((p) => p.steps.map((s) => ({ phase: p.phase, s })));
    if (!ctx.json) for (const { phase, s } of steps.slice(printed)) ctx.io.stdout.write(`${oneLine(`${phase}/${s.name}: ${s.status} ${s.message} (${s.duration_ms} ms)`)}\n`);
    printed = steps.length;
    if (journal.status !== 'running') return journal;
    if (!(await agent.isRunning(journal.id))) {
      // Between its last live write and its final journal, or gone: look once more.
      const again = await agent.runsShow(journal.id);
      if (again.status !== 'running') journal = again;
      else return again;
      continue;
    }
    await new Promise((r) => setTimeout(r, 500));
    journal = await agent.runsShow(journal.id);
  }
}
