// server.verify: is the server still as configured? Each step's NAME.if and NAME.check, never a
// step (run/verify.ts); one line per step and a summary; exit 0 ok, 2 drift, 1 a check could not run.

import type { VerifyOutcome } from '../../run/verify.js';
import { describeVerify } from '../../run/verify.js';
import type { Command, CommandContext } from '../context.js';
import { labelOption, parseWait, waitOption } from '../run-command.js';

export const serverVerify: Command = {
  usage: 'server.verify',
  describe: "is the server still as configured? Under the run lock, explorers first, then each applicable step's .if and .check (never a step, backout or error.d): ok, drift, no check, skipped; exit 0 no drift, 2 drift, 1 a check could not run",
  examples: [
    ['$0 server.verify', 'one line per step, then the summary'],
    ['$0 server.verify --report --wait=300 -q', 'from a timer: report the outcome as a callback'],
  ],
  builder: (y) =>
    y
      .option('report', { type: 'boolean', describe: 'post the outcome as a callback (action verify)' })
      .option('wait', waitOption)
      .option('callback-url', { type: 'string', describe: 'where --report sends it (default: [callback] url)' })
      .option('label', labelOption),
  async run(ctx, args) {
    const outcome = await withStopSignals(ctx, (signal) =>
      ctx.agent().verify({ report: Boolean(args['report']), waitMs: parseWait(args['wait']), callbackUrl: args['callback-url'] as string | undefined, label: args['label'] as string | undefined, signal }),
    );
    ctx.exitCode = outcome.exitCode;
    ctx.print(formatVerify(outcome), verifyJson(outcome), formatVerifyBrief(outcome));
  },
};

/** SIGINT/SIGTERM stop the checks (they could not run: the verify ends in error, and is recorded). */
async function withStopSignals<T>(ctx: CommandContext, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) ctx.logger.warn(`${signal}: stopping the checks`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await start(stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `drift     configure/30-haproxy: maxconn is 100, not 4096 (exit 1)`, one per step, then the summary. */
function formatVerify(o: VerifyOutcome): string {
  const lines = o.steps.map((s) => `${s.result.padEnd(9)} ${s.phase}/${s.step}${s.message ? `: ${s.message}` : ''}`);
  const f = o.journal.failure;
  if (f && (f.phase === 'explorer' || f.step.startsWith('environment.d/'))) lines.push(`could not verify: ${f.phase}/${f.step}: ${f.message}`);
  lines.push(formatVerifyBrief(o), `journal: ${o.journalPath} (bootstrap runs.show ${o.id})`);
  return lines.join('\n');
}

/** The one-line result, for -q. */
function formatVerifyBrief(o: VerifyOutcome): string {
  const f = o.journal.failure;
  const where = o.status === 'error' && f ? `: could not check ${f.phase}/${f.step}: ${f.message}` : '';
  return `verify ${o.status}: ${describeVerify(o.summary)} (${(o.journal.duration_ms / 1000).toFixed(1)} s, run ${o.id})${where}`;
}

function verifyJson(o: VerifyOutcome) {
  const j = o.journal;
  return {
    server: j.server,
    id: o.id,
    action: 'verify',
    status: o.status,
    exit_code: o.exitCode,
    started_at: j.started_at,
    finished_at: j.finished_at,
    duration_ms: j.duration_ms,
    mode: j.mode,
    label: j.label ?? null,
    summary: { ok: o.summary.ok, drift: o.summary.drift, no_check: o.summary.no_check, skipped: o.summary.skipped, error: o.summary.error },
    steps: o.steps,
    failure: j.failure,
    journal: o.journalPath,
  };
}
