// What the receiver shows of the fleet: the JSON API returns these objects as they are, and the
// pages (pages.ts) render the same objects, so the page and the API never disagree.

/** A server's state as the fleet page counts it; `unresponsive` wins over the rest. */
export type ServerState = 'unresponsive' | 'failed' | 'rebooting' | 'disabled' | 'drifted' | 'changed' | 'unchanged';

/** The failure of a run, as the callback carried it. */
export interface FailureView {
  phase: string;
  step: string;
  kind: string;
  exit_code: number | null;
  message: string;
  /** The last lines the failed step printed (agents that send it). */
  output_tail?: string;
}

/** One server's latest state: its row in the fleet list. */
export interface ServerRow {
  server: string;
  state: ServerState;
  /** When its last callback (of any kind) was received, ISO 8601. */
  last_report_at: string;
  last_kind: 'run' | 'checkup' | 'verify';
  last_status: string;
  last_label: string | null;
  mode: string;
  products: Record<string, string | null>;
  /** The last run (kind run) it reported: its id, action, status, end time; null when none yet. */
  last_run: { id: string; action: string; status: string; finished_at: string; label: string | null } | null;
  last_success_at: string | null;
  failed_runs_since_success: number;
  disabled: { since: string; by: string; reason: string } | null;
  /** Its last server.verify --report found drift (and no later verify found none). */
  drifted: boolean;
  healthy: boolean | null;
}

/** GET /api/fleet */
export interface FleetView {
  generated_at: string;
  /** A server with no callback for this long is unresponsive. */
  unresponsive_after_s: number;
  counts: Record<ServerState, number> & { total: number };
  /** Sorted by last report, oldest first (the silent ones on top). */
  servers: ServerRow[];
}

/** One stored callback (a run, checkup or verify) of a server. */
export interface RunView {
  id: string;
  kind: 'run' | 'checkup' | 'verify';
  action: string;
  status: string;
  label: string | null;
  exit_code: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  received_at: string;
  failure: FailureView | null;
  counts: { changed: number; unchanged: number; skipped: number; failed: number } | null;
  changes: { phase: string; step: string; changes: string[] }[];
  phases: { phase: string; status: string; steps: number; failed: number; duration_ms: number }[];
}

/** GET /api/servers/:server?runs=N */
export interface ServerView {
  generated_at: string;
  server: ServerRow;
  /** Newest first, at most N. */
  runs: RunView[];
}
