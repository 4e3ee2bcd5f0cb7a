// The callback body: one JSON schema for runs and checkups (`kind`), named and versioned. The
// JSON Schema is schema/callback.schema.json; receivers deduplicate on `id`. Fields are added
// compatibly within version 1 (optional, receivers ignore what they do not know); the version
// moves only when a field changes meaning or goes away.

import type { Checkup } from '../heartbeat/types.js';
import type { FailureRecord } from '../state/journal-types.js';
import { summarizeRun, type RunJournal, type RunSummary, type StepVerdict, type VerifySummary, verifyVerdicts } from '../state/journal.js';

const callbackSchema = { name: 'bootstrap.callback', version: 1 } as const;

/** The fields of schema/callback.schema.json: a run's summary (as --json prints it) and more. */
export type CallbackBody = Omit<RunSummary, 'action' | 'counts' | 'changes' | 'failure'> & {
  /** Runs: where and why it failed; `output_tail`: the last lines the failed step printed (when it printed any). */
  failure: (FailureRecord & { output_tail?: string }) | null;
  schema: string;
  schema_version: number;
  kind: 'run' | 'checkup' | 'verify';
  server: string;
  action: string;
  heartbeat: Checkup | null;
  /** Runs: the steps' changes (counts, and each step's list) and the facts of the run. */
  counts?: RunSummary['counts'];
  changes?: RunSummary['changes'];
  facts?: Record<string, unknown> | null;
  /** Checkups: `server.disable`'s record while runs are disabled, else null. */
  disabled?: { since: string; by: string; reason: string } | null;
  /** server.verify --report: the summary and each step's result. */
  verify?: VerifyCallback;
};

export function runCallback(j: RunJournal): CallbackBody {
  const summary = summarizeRun(j);
  const tail = j.failure ? failureOutput(j) : '';
  return {
    schema: callbackSchema.name,
    schema_version: callbackSchema.version,
    kind: 'run',
    server: j.server,
    ...summary,
    ...(summary.failure && tail ? { failure: { ...summary.failure, output_tail: tail } } : {}),
    heartbeat: (j.health as Checkup | null) ?? null,
    facts: j.facts ?? null,
  };
}

/** A failure's `output_tail`: the last lines the failed step (or its check) printed, bounded, as masked in the journal. */
const tailLines = 20;
const tailBytes = 2048;

function failureOutput(j: RunJournal): string {
  const f = j.failure!;
  // The step's record (named NAME.check when its check stood for it); of it, the part that failed:
  // its .if or its check (whatever the failure's kind: a timeout or signal keeps its own), else the step.
  const step = j.phases.flatMap((p) => p.steps).find((s) => s.phase === f.phase && (s.name === f.step || s.name === `${f.step}.check`));
  const record = [step?.condition, step?.check].find((r) => r?.status === 'failure') ?? step;
  const lines = (record?.output_tail ?? '').trimEnd().split('\n').slice(-tailLines);
  // Bounded in bytes from the end, cut at a line, never inside a character.
  while (lines.length > 1 && Buffer.byteLength(lines.join('\n')) > tailBytes) lines.shift();
  const text = lines.join('\n');
  return Buffer.byteLength(text) <= tailBytes ? text : Buffer.from(text).subarray(-tailBytes).toString('utf8').replace(/^\uFFFD+/, '');
}

/** What a checkup's callback says of the runs: the last success and the failed runs since (state.json's). */
export interface RunTally {
  last_success: RunJournal['last_success'];
  failed_runs_since_success: number;
}

export function checkupCallback(id: string, server: string, mode: string, products: Record<string, string | null>, c: Checkup, tally?: RunTally): CallbackBody {
  const started = Date.parse(c.started_at);
  const finished = Date.parse(c.finished_at);
  return {
    schema: callbackSchema.name,
    schema_version: callbackSchema.version,
    kind: 'checkup',
    id,
    server,
    action: 'checkup',
    status: c.healthy ? 'success' : 'failure',
    exit_code: c.healthy ? 0 : 1,
    started_at: c.started_at,
    finished_at: c.finished_at,
    duration_ms: finished - started,
    mode,
    products,
    label: null,
    failure: null,
    phases: [],
    heartbeat: c,
    ...(tally ? { last_success: tally.last_success ?? null, failed_runs_since_success: tally.failed_runs_since_success } : {}),
  };
}

/** What a verify's callback adds: its summary and each step's result (ok, drift, no check, skipped, error). */
export type VerifyCallback = VerifySummary & { steps: StepVerdict[] };

/**
 * `server.verify --report`: kind and action `verify`; status `success` (no drift), `drift` (a
 * check failed) or `failure` (a check, an explorer or environment.d could not run).
 */
export function verifyCallback(j: RunJournal): CallbackBody {
  const { counts: _counts, changes: _changes, ...summary } = summarizeRun(j);
  return {
    schema: callbackSchema.name,
    schema_version: callbackSchema.version,
    kind: 'verify',
    server: j.server,
    ...summary,
    heartbeat: null,
    facts: j.facts ?? null,
    verify: { ...j.verify!, steps: verifyVerdicts(j.phases) },
  };
}
