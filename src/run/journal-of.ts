// The one journal builder: a run's journal as it stands (running, paused, then its outcome), and
// the stub of a run whose own journal is gone (its agent died before writing one, or it was lost
// while the run waited for its reboot) — enough to record the run as failed.

import { ExitCode } from '../errors.js';
import type { Facts } from '../facts/facts.js';
import type { Plan } from '../pipeline/plan.js';
import { countSteps, journalSchema, type PhaseRecord, type RebootRecord, type RunJournal, type RunTimings, type StepRecord } from '../state/journal.js';

/** What a journal says of its run beside its phases. */
export interface JournalHead {
  id: string;
  action: string;
  command: string;
  server: string;
  status: RunJournal['status'];
  startedAt: string;
  /** null: not known (a refusal of an invalid bootstrap.ini). */
  phasesDir: string | null;
  mode: string;
  modePrevious?: string | null | undefined;
  product?: string | null | undefined;
  version?: string | null | undefined;
  versionPrevious?: string | null | undefined;
  products: Record<string, string | null>;
  /** Redacted. */
  callbackUrl?: string | null | undefined;
  label?: string | null | undefined;
}

/** What only a run this agent executes records (a stub has none of it). */
export interface JournalRun {
  facts: Facts | null;
  explorers: StepRecord[];
  boots: { boot_id: string | null; started_at: string }[];
  reboots: RebootRecord[];
  /** Where it spent its time besides its files, as it stands. */
  timings: RunTimings;
}

/** The journal: `running` (exit_code null) until the caller puts the outcome in; a stub `failure` has exit 1. */
export function journalOf(head: JournalHead, phases: PhaseRecord[], run?: JournalRun): RunJournal {
  const now = new Date();
  const journal: RunJournal = {
    schema: journalSchema,
    id: head.id,
    action: head.action,
    command: head.command,
    server: head.server,
    status: head.status,
    exit_code: head.status === 'failure' ? ExitCode.failed : null,
    started_at: head.startedAt,
    finished_at: now.toISOString(),
    duration_ms: now.getTime() - Date.parse(head.startedAt),
    phases_dir: head.phasesDir,
    mode: head.mode,
    mode_previous: head.modePrevious ?? null,
    product: head.product ?? null,
    version: head.version ?? null,
    version_previous: head.versionPrevious ?? null,
    products: head.products,
    callback_url: head.callbackUrl ?? null,
    label: head.label ?? null,
    phases,
    failure: null,
    backouts: [],
    error_steps: [],
    health: null,
  };
  if (!run) return journal;
  return { ...journal, facts: run.facts, explorers: run.explorers, counts: countSteps({ phases }), boots: run.boots, reboots: run.reboots, timings: { ...run.timings } };
}

/** Timings of a run that starts: none yet; a resumed run starts from those of its boots before. */
export function startTimings(before: RunTimings | undefined): RunTimings {
  return { lock_wait_ms: 0, explorers_ms: null, environment_ms: null, health_gate_ms: null, callback_ms: null, ...before };
}

/** Adds `ms` to one timing (null becomes a number: it happened). */
export function addTiming(t: RunTimings, key: keyof RunTimings, ms: number): void {
  t[key] = (t[key] ?? 0) + Math.round(ms);
}

/** The phases of a paused run's journal: those run so far, then the rest as pending. */
export function withPending(plan: Plan, phases: PhaseRecord[]): PhaseRecord[] {
  const rest = plan.phases.slice(phases.length).map((p) => ({ phase: p.phase, dir: p.dir, status: p.exists ? ('pending' as const) : ('missing' as const), steps: [], duration_ms: 0 }));
  return [...phases, ...rest];
}
