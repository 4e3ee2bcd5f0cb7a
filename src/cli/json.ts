// The --json interface: what scripts and the fleet playbook read. One casing (snake_case, as
// callbacks and journals), a `schema_version` on every object printed, and no internals (lock
// inode numbers, intent files). Views are explicit: maps keyed by product or setting names are
// data, never renamed.

import type { FactsReport, SettingChange, StatusReport } from '../agent.js';
import type { Plan } from '../pipeline/plan.js';
import type { DryRunReport } from '../run/index.js';

/** Bumped only when a field changes meaning or goes away; new fields may appear at any time. */
const jsonSchemaVersion = 1;

export function withSchema(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data;
  return { schema_version: jsonSchemaVersion, ...(data as Record<string, unknown>) };
}

export function statusJson(s: StatusReport) {
  const owner = s.lock.owner;
  return {
    server: s.server,
    config: s.config,
    state_dir: s.stateDir,
    mode: s.mode,
    mode_origin: s.modeOrigin,
    provisioned: s.provisioned,
    provisioned_at: s.provisionedAt,
    products: s.products,
    last_run: s.lastRun,
    last_success: s.lastSuccess,
    failed_runs_since_success: s.failedRunsSinceSuccess,
    lock: {
      state: s.lock.state,
      path: s.lock.path,
      holder: owner && {
        pid: owner.pid,
        command: owner.command,
        started_at: owner.startedAt,
        host: owner.host,
        run_id: owner.runId ?? null,
        action: owner.action ?? null,
        waiting: owner.waiting ?? null,
      },
    },
    last_checkup: s.lastCheckup,
    callbacks: { pending: s.callbacks.pending, oldest_age_seconds: s.callbacks.oldestAgeSeconds, dead: s.callbacks.dead },
    paused_run: s.pausedRun,
    disabled: s.disabled,
    phases_version: s.phasesVersion,
    last_verify: s.lastVerify,
  };
}

export function planJson(plan: Plan, refusal: string | null) {
  const phase = (p: Plan['error']) => ({ phase: p.phase, dir: p.dir, exists: p.exists, steps: p.steps, skipped: p.skipped });
  return {
    base_dir: plan.baseDir,
    environment: plan.environment,
    phases: plan.phases.map(phase),
    error: phase(plan.error),
    explorers: phase(plan.explorers),
    refused: plan.refused,
    via_sh: [...plan.viaSh],
    refusal,
  };
}

export function dryRunJson(r: DryRunReport) {
  return { status: 'dry-run', action: r.action, upgrade: r.upgrade, ok: r.ok, refusal: r.refusal, failure: r.failure, plan: planJson(r.plan, r.refusal), syntax: r.syntax, preview: r.preview, facts: r.facts, explorers: r.explorers };
}

/** server.facts: the facts (by name), when and at what cost they were collected. */
export function factsJson(r: FactsReport) {
  return { collected_at: r.doc.collected_at, collected_now: r.collected, facts: r.doc.facts, failed: r.doc.failed ?? [], failure: r.failure, builtin_ms: r.doc.builtin_ms, explorers_ms: r.doc.explorers_ms, explorers: r.explorers };
}

/** product.set / product.unset: what changed, and what already was so. */
export function settingChangesJson(changes: SettingChange[]) {
  const view = ({ product, setting, value, previous }: SettingChange) => ({ product, setting, value, previous });
  return { changed: changes.filter((c) => c.changed).map(view), unchanged: changes.filter((c) => !c.changed).map(view) };
}
