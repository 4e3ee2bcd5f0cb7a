// What a callback does to its server's latest state, and how that state reads (ServerRow,
// RunView): pure functions, the same for both databases and for the API and the pages.

import type { FailureView, FleetView, RunView, ServerRow, ServerState } from './view.js';

/** A callback body that passed the schema (only the fields the receiver reads are typed). */
export interface CallbackBody {
  kind: 'run' | 'checkup' | 'verify';
  id: string;
  server: string;
  action: string;
  status: string;
  label?: string | null;
  exit_code: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  mode: string;
  products: Record<string, string | null>;
  failure: FailureView | null;
  counts?: { changed: number; unchanged: number; skipped: number; failed: number };
  changes?: { phase: string; step: string; changes: string[] }[];
  phases: RunView['phases'];
  last_success?: { id: string; action: string; finished_at: string } | null;
  failed_runs_since_success?: number;
  disabled?: { since: string; by: string; reason: string } | null;
  heartbeat: { healthy: boolean } | null;
}

/** A server's latest state as stored (servers table, JSON columns parsed). */
export interface ServerRecord {
  server: string;
  last_report_at: number;
  last_finished_at: string;
  last_kind: ServerRow['last_kind'];
  last_status: string;
  last_label: string | null;
  mode: string;
  products: Record<string, string | null>;
  last_run: ServerRow['last_run'];
  last_run_changed: number;
  last_success_at: string | null;
  failed_runs_since_success: number;
  disabled: ServerRow['disabled'];
  drifted: boolean;
  healthy: boolean | null;
}

function failedSince(prev: ServerRecord | null, b: CallbackBody): number {
  if (b.failed_runs_since_success !== undefined) return b.failed_runs_since_success;
  const before = prev?.failed_runs_since_success ?? 0;
  if (b.kind !== 'run') return before;
  return b.status === 'success' ? 0 : b.status === 'failure' || b.status === 'refused' ? before + 1 : before;
}

function lastSuccessAt(prev: ServerRecord | null, b: CallbackBody): string | null {
  if (b.last_success !== undefined) return b.last_success?.finished_at ?? null;
  if (b.kind === 'run' && b.status === 'success') return b.finished_at;
  return prev?.last_success_at ?? null;
}

/**
 * The state after `b`. A callback older than the one applied last (a redelivery that waited in an
 * outbox) changes only the time of the last report: the newer state stands.
 */
export function applyCallback(prev: ServerRecord | null, b: CallbackBody, receivedAt: number): ServerRecord {
  if (prev && b.finished_at < prev.last_finished_at) return { ...prev, last_report_at: Math.max(prev.last_report_at, receivedAt) };
  const run = b.kind === 'run';
  return {
    server: b.server,
    last_report_at: receivedAt,
    last_finished_at: b.finished_at,
    last_kind: b.kind,
    last_status: b.status,
    last_label: b.label ?? null,
    mode: b.mode,
    products: b.products,
    last_run: run ? { id: b.id, action: b.action, status: b.status, finished_at: b.finished_at, label: b.label ?? null } : (prev?.last_run ?? null),
    last_run_changed: run ? (b.counts?.changed ?? 0) : (prev?.last_run_changed ?? 0),
    last_success_at: lastSuccessAt(prev, b),
    failed_runs_since_success: failedSince(prev, b),
    disabled: b.disabled !== undefined ? b.disabled : (prev?.disabled ?? null),
    drifted: b.kind === 'verify' && b.status !== 'failure' ? b.status === 'drift' : (prev?.drifted ?? false),
    healthy: b.heartbeat ? b.heartbeat.healthy : (prev?.healthy ?? null),
  };
}

/** The one state a server is counted in: the first that applies, in ServerState's order. */
export function stateOf(r: ServerRecord, now: number, unresponsiveAfterMs: number): ServerState {
  if (now - r.last_report_at > unresponsiveAfterMs) return 'unresponsive';
  const status = r.last_run?.status;
  if (status === 'failure' || status === 'refused') return 'failed';
  if (status === 'rebooting') return 'rebooting';
  if (r.disabled) return 'disabled';
  if (r.drifted) return 'drifted';
  return r.last_run_changed > 0 ? 'changed' : 'unchanged';
}

export function serverRow(r: ServerRecord, now: number, unresponsiveAfterMs: number): ServerRow {
  return {
    server: r.server,
    state: stateOf(r, now, unresponsiveAfterMs),
    last_report_at: new Date(r.last_report_at).toISOString(),
    last_kind: r.last_kind,
    last_status: r.last_status,
    last_label: r.last_label,
    mode: r.mode,
    products: r.products,
    last_run: r.last_run,
    last_success_at: r.last_success_at,
    failed_runs_since_success: r.failed_runs_since_success,
    disabled: r.disabled,
    drifted: r.drifted,
    healthy: r.healthy,
  };
}

export const serverStates: ServerState[] = ['unresponsive', 'failed', 'rebooting', 'disabled', 'drifted', 'changed', 'unchanged'];

/** Oldest report first: the silent servers on top. */
export function fleetView(records: ServerRecord[], now: number, unresponsiveAfterMs: number): FleetView {
  const servers = records.map((r) => serverRow(r, now, unresponsiveAfterMs)).sort((a, b) => a.last_report_at.localeCompare(b.last_report_at) || a.server.localeCompare(b.server));
  const counts = Object.fromEntries(serverStates.map((s) => [s, 0])) as FleetView['counts'];
  for (const s of servers) counts[s.state]++;
  counts.total = servers.length;
  return { generated_at: new Date(now).toISOString(), unresponsive_after_s: Math.round(unresponsiveAfterMs / 1000), counts, servers };
}

/** A stored callback as the server page shows it. */
export function runView(body: CallbackBody, receivedAt: number): RunView {
  return {
    id: body.id,
    kind: body.kind,
    action: body.action,
    status: body.status,
    label: body.label ?? null,
    exit_code: body.exit_code,
    started_at: body.started_at,
    finished_at: body.finished_at,
    duration_ms: body.duration_ms,
    received_at: new Date(receivedAt).toISOString(),
    failure: body.failure,
    counts: body.counts ?? null,
    changes: body.changes ?? [],
    phases: body.phases,
  };
}
