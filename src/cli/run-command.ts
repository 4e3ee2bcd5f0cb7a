// The wiring every command that starts a run shares: its flags (--dry-run, --wait, --timeout,
// --callback-url, --label, --detailed-exitcodes, --force), the request they make, and SIGINT/SIGTERM wired
// to the run while it goes, then its outcome printed and turned into the exit code.

import type { Argv } from 'yargs';
import { ExitCode, UsageError } from '../errors.js';
import { maxDurationMs } from '../config/config.js';
import { countSteps, summarizeRun as runSummary } from '../state/journal.js';
import type { RunOutcome, RunRequest } from '../run/index.js';
import type { CommandContext } from './context.js';
import { formatDryRun, formatOutcome, formatOutcomeBrief } from './format.js';
import { dryRunJson } from './json.js';

/** `--wait[=S]`: undefined (fail at once), Infinity (bare --wait) or milliseconds. */
export function parseWait(value: unknown): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === '' || value === true) return Infinity;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n * 1000 > maxDurationMs) throw new UsageError(`--wait=${String(value).slice(0, 40)}: not a number of seconds up to 24 days`, 'use --wait or --wait=SECONDS');
  return n * 1000;
}

export const waitOption = { type: 'string', describe: 'wait for a running run to finish (optionally at most S seconds: --wait=S)' } as const;

export function runOptions(y: Argv): Argv {
  return y
    .option('dry-run', { type: 'boolean', describe: 'change nothing: print the plan and syntax-check sh/bash steps' })
    .option('wait', waitOption)
    .option('timeout', { type: 'number', describe: 'bound on the whole run, in seconds (default: [phases] run_timeout)' })
    .option('callback-url', { type: 'string', describe: 'where to report the outcome (default: [callback] url)' })
    .option('label', labelOption)
    .option('detailed-exitcodes', detailedOption)
    .option('force', forceOption);
}

export const forceOption = { type: 'boolean', describe: 'run even though server.disable is in force (the server stays disabled)' } as const;

export const labelOption = { type: 'string', describe: 'a label for this run (a rollout id, a batch): in its journal, callback and BOOTSTRAP_LABEL' } as const;

export const detailedOption = { type: 'boolean', describe: 'exit 2 when the run succeeded and steps reported changes, or paused for a reboot (0: no change reported, 1: failure)' } as const;

export function runRequest(args: Record<string, unknown>) {
  const timeout = args['timeout'] as number | undefined;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0 && timeout * 1000 <= maxDurationMs)) throw new UsageError('--timeout: not a positive number of seconds up to 24 days (2073600)');
  return {
    dryRun: Boolean(args['dry-run']),
    waitMs: parseWait(args['wait']),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    callbackUrl: args['callback-url'] as string | undefined,
    label: args['label'] as string | undefined,
    force: Boolean(args['force']),
  };
}

type RunSignals = Pick<RunRequest, 'signal' | 'cleanupSignal' | 'onStep'>;

/**
 * Runs a pipeline command with SIGINT/SIGTERM wired to it (first: stop the run, which then runs
 * error.d; second: stop the clean-up too), prints the outcome, sets the exit code.
 */
export async function runAndReport(ctx: CommandContext, start: (signals: RunSignals) => Promise<RunOutcome | null>, detailed = false, extra: Record<string, unknown> = {}): Promise<RunOutcome | null> {
  const run = new AbortController();
  const cleanup = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!run.signal.aborted) {
      ctx.logger.warn(`${signal}: stopping the run (again to stop clean-up too)`);
      run.abort();
    } else cleanup.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: RunOutcome | null;
  try {
    outcome = await start({ signal: run.signal, cleanupSignal: cleanup.signal, onStep: ctx.progress });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.endProgress?.();
  }
  if (outcome === null) return null;
  ctx.exitCode = outcome.exitCode;
  if (outcome.status === 'nothing') return outcome;
  // Puppet's --detailed-exitcodes: 2 = the server changed: a success with changes reported (a
  // step that reports nothing counts as unchanged), or a pause for a reboot, whatever was
  // reported (the server reboots): 0 never reads as "nothing changed" when something did.
  const changed = outcome.status === 'rebooting' || (outcome.status === 'success' && outcome.journal !== null && countSteps(outcome.journal).changed > 0);
  if (detailed && changed) ctx.exitCode = ExitCode.changes;
  if (outcome.dryRun) ctx.print(formatDryRun(outcome.dryRun), dryRunJson(outcome.dryRun));
  else if (outcome.journal) ctx.print(formatOutcome(outcome.journal, outcome.journalPath), { server: outcome.journal.server, ...runSummary(outcome.journal), journal: outcome.journalPath, ...extra }, formatOutcomeBrief(outcome.journal));
  return outcome;
}
