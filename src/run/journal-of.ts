// Journals built outside the pipeline: the stub of a run whose own journal is gone, and the
// phases of a paused run's journal.

import { ExitCode } from '../errors.js';
import type { Plan } from '../pipeline/plan.js';
import { journalSchema, type PhaseRecord, type RunJournal } from '../state/journal.js';
import type { RunContext } from './context.js';

/**
 * The journal of a run whose own journal is gone (its agent died before writing one, or it
 * was lost while the run waited for its reboot): enough to record the run as failed.
 */
export function journalStub(ctx: RunContext, o: { id: string; action: string; command: string; status: RunJournal['status']; startedAt: string; mode: string; products: Record<string, string | null>; label?: string | null }): RunJournal {
  const now = new Date();
  return {
    schema: journalSchema, id: o.id, action: o.action, command: o.command, server: ctx.config.server.name, status: o.status, exit_code: o.status === 'failure' ? ExitCode.failed : null,
    started_at: o.startedAt, finished_at: now.toISOString(), duration_ms: now.getTime() - Date.parse(o.startedAt), phases_dir: ctx.phasesDir, mode: o.mode, mode_previous: null,
    product: null, version: null, version_previous: null, products: o.products, callback_url: null, label: o.label ?? null,
    phases: [], failure: null, backouts: [], error_steps: [], health: null,
  };
}

/** The phases of a paused run's journal: those run so far, then the rest as pending. */
export function withPending(plan: Plan, phases: PhaseRecord[]): PhaseRecord[] {
  const rest = plan.phases.slice(phases.length).map((p) => ({ phase: p.phase, dir: p.dir, status: p.exists ? ('pending' as const) : ('missing' as const), steps: [], duration_ms: 0 }));
  return [...phases, ...rest];
}
