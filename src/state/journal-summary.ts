// What a run's journal says in brief: its summary (the --json output of run commands and the core
// of its callback), its step counts and their words, the changes reported, where it failed.

import type { FailureRecord, RunJournal, StepCounts, StepRecord } from './journal-types.js';

export type RunSummary = ReturnType<typeof summarizeRun>;

/** The outcome of a run in brief: the --json output of run commands and the core of its callback. */
export function summarizeRun(j: RunJournal) {
  return {
    id: j.id,
    action: j.action,
    status: j.status,
    exit_code: j.exit_code,
    started_at: j.started_at,
    finished_at: j.finished_at,
    duration_ms: j.duration_ms,
    mode: j.mode,
    products: j.products,
    label: j.label ?? null,
    ...(j.action === 'upgrade' && j.product ? { upgrade: { product: j.product, from: j.version_previous, to: j.version } } : {}),
    failure: j.failure,
    phases: j.phases.map((p) => ({ phase: p.phase, status: p.status, steps: p.steps.length, failed: p.steps.filter((s) => s.status === 'failure').length, duration_ms: p.duration_ms })),
    counts: countSteps(j),
    changes: changesOf(j),
    ...(j.boots && j.boots.length > 1 ? { boots: j.boots } : {}),
    ...(j.reboots?.length ? { reboots: j.reboots } : {}),
    ...(j.failed_runs_since_success === undefined ? {} : { last_success: j.last_success ?? null, failed_runs_since_success: j.failed_runs_since_success }),
  };
}

/** A step changed something when it, its check or its .if reported a change (in any attempt: see the pipeline). */
export function stepChanges(s: StepRecord): string[] {
  return [...(s.condition?.changes ?? []), ...(s.changes ?? []), ...(s.check?.changes ?? [])];
}

/** `5 steps: 1 changed, 3 unchanged, 1 skipped, 0 failed`: the summary line's and the CLI's words. */
export function describeCounts(c: StepCounts): string {
  const steps = c.changed + c.unchanged + c.skipped + c.failed;
  return `${steps} step${steps === 1 ? '' : 's'}: ${c.changed} changed, ${c.unchanged} unchanged, ${c.skipped} skipped, ${c.failed} failed`;
}

export function countSteps(j: Pick<RunJournal, 'phases'>): StepCounts {
  const counts: StepCounts = { changed: 0, unchanged: 0, skipped: 0, failed: 0 };
  for (const s of j.phases.flatMap((p) => p.steps)) {
    // A step skipped by its .if on a retry may have changed things on the attempt before: changed.
    if (s.status === 'failure') counts.failed++;
    else if (stepChanges(s).length || s.unreported === 'changed') counts.changed++;
    else if (s.status === 'skipped') counts.skipped++;
    else counts.unchanged++;
  }
  return counts;
}

/** Each step, backout and error.d file that reported changes, with them. */
export function changesOf(j: Pick<RunJournal, 'phases' | 'backouts' | 'error_steps'>): { phase: string; step: string; changes: string[] }[] {
  const out: { phase: string; step: string; changes: string[] }[] = [];
  for (const s of [...j.phases.flatMap((p) => p.steps), ...j.backouts, ...j.error_steps]) {
    const changes = stepChanges(s);
    if (changes.length) out.push({ phase: s.phase, step: s.name, changes });
  }
  return out;
}

/** Where a run failed: `configure/20-haproxy`, `the health gate (web)`, or `agent` alone (the agent's own failure, no file). */
export function failurePlace(f: Pick<FailureRecord, 'phase' | 'step' | 'kind'>): string {
  if (f.kind === 'heartbeat') return `the health gate${f.step ? ` (${f.step})` : ''}`;
  return f.step ? `${f.phase}/${f.step}` : f.phase;
}

/**
 * The counts in words, for people: as describeCounts, but a run that failed where no step did (the
 * health gate, the agent) says where instead of `0 failed`. The `counts` field stays steps only:
 * callbacks, metrics (bootstrap_last_run_steps) and --json count files; `failure` says the rest.
 */
export function describeRunCounts(j: Pick<RunJournal, 'phases' | 'status' | 'failure'>): string {
  const counts = countSteps(j);
  const text = describeCounts(counts);
  if (j.status !== 'failure' || !j.failure || counts.failed > 0) return text;
  const place = j.failure.kind === 'heartbeat' ? 'the health gate' : j.failure.phase === 'agent' ? 'the agent' : failurePlace(j.failure);
  return `${text.replace(/, 0 failed$/, '')}; ${place} failed`;
}
