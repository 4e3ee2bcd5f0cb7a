// runs.blame (cloud-init's `analyze blame`): where a run spent its time, or, over the last N
// runs, each step's median and worst duration. Reads the journals and nothing else. Beside the
// files, what the agent itself waited for has rows of its own (role `agent`, phase `agent`):
// `(lock wait)`, `(explorers)`, `(environment.d)`, `(health gate)`, `(callback)`, from the
// journal's timings (journals of older agents have none: their files only).

import { DataError } from '../errors.js';
import type { JournalStore, RunJournal, RunTimings, StepRecord } from './journal.js';

export interface BlameEntry {
  /** `explorer`, a phase, `backout` or `error`; `agent` for the agent's own rows. */
  phase: string;
  /** The file: `20-haproxy`, `20-haproxy.check`, `20-haproxy.if`, `20-haproxy.backout`; or `(lock wait)` …. */
  name: string;
  role: StepRecord['role'] | 'agent';
  status: StepRecord['status'];
  duration_ms: number;
  /**
   * Its share of the run's duration, 0..1 (explorers run in parallel: their shares overlap, and
   * `(explorers)` holds them all; `(callback)` comes after the duration was taken: it can pass 1).
   */
  share: number;
}

export interface RunBlame {
  id: string;
  action: string;
  status: string;
  duration_ms: number;
  entries: BlameEntry[];
}

export interface StepStats {
  phase: string;
  name: string;
  role: StepRecord['role'] | 'agent';
  /** In how many of the runs it ran. */
  runs: number;
  median_ms: number;
  worst_ms: number;
  /** The run of the worst duration. */
  worst_run: string;
}

/** A row of blame: a file the run ran, or one of the agent's own. */
type Timed = Pick<StepRecord, 'phase' | 'name' | 'status' | 'duration_ms'> & { role: BlameEntry['role'] };

const agentRows: [keyof RunTimings, string][] = [
  ['lock_wait_ms', '(lock wait)'],
  ['explorers_ms', '(explorers)'],
  ['environment_ms', '(environment.d)'],
  ['health_gate_ms', '(health gate)'],
  ['callback_ms', '(callback)'],
];

/** The agent's own rows of a run: each timing it recorded (null: it did not happen). */
function agentRowsOf(j: RunJournal): Timed[] {
  const t = j.timings;
  if (!t) return [];
  const unhealthy = j.failure?.kind === 'heartbeat';
  return agentRows
    .filter(([key]) => typeof t[key] === 'number')
    .map(([key, name]) => ({ phase: 'agent', name, role: 'agent', status: key === 'health_gate_ms' && unhealthy ? 'failure' : 'success', duration_ms: t[key]! }));
}

/** Every file a run ran (explorers, conditions, steps, checks, backouts, error.d), and the agent's rows, with their durations. */
function rowsOf(j: RunJournal): Timed[] {
  return [...agentRowsOf(j), ...filesOf(j)];
}

/** Every file a run ran (explorers, conditions, steps, checks, backouts, error.d), with its duration. */
function filesOf(j: RunJournal): StepRecord[] {
  const out: StepRecord[] = [...(j.explorers ?? [])];
  for (const p of j.phases) {
    for (const s of p.steps) {
      if (s.condition) out.push(s.condition);
      if (s.status !== 'skipped' && s.verify === undefined) out.push(s); // a verify's step never ran: only its .if and .check did
      if (s.check) out.push(s.check);
    }
  }
  return [...out, ...j.backouts, ...j.error_steps];
}

export function blameRun(j: RunJournal): RunBlame {
  const total = Math.max(1, j.duration_ms);
  const entries = rowsOf(j)
    .map((s) => ({ phase: s.phase, name: s.name, role: s.role, status: s.status, duration_ms: s.duration_ms, share: Math.round((s.duration_ms / total) * 1000) / 1000 }))
    .sort((a, b) => b.duration_ms - a.duration_ms);
  return { id: j.id, action: j.action, status: j.status, duration_ms: j.duration_ms, entries };
}

/** Per file (phase + name), over the journals given: median and worst, slowest median first. */
export function blameRuns(journals: RunJournal[]): StepStats[] {
  const byFile = new Map<string, { s: Timed; durations: { ms: number; run: string }[] }>();
  for (const j of journals) {
    for (const s of rowsOf(j)) {
      const key = `${s.phase}/${s.name}`;
      const entry = byFile.get(key) ?? { s, durations: [] };
      entry.durations.push({ ms: s.duration_ms, run: j.id });
      byFile.set(key, entry);
    }
  }
  return [...byFile.values()]
    .map(({ s, durations }) => {
      const sorted = durations.map((d) => d.ms).sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      const median = sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
      const worst = durations.reduce((w, d) => (d.ms > w.ms ? d : w));
      return { phase: s.phase, name: s.name, role: s.role, runs: durations.length, median_ms: median, worst_ms: worst.ms, worst_run: worst.run };
    })
    .sort((a, b) => b.median_ms - a.median_ms || b.worst_ms - a.worst_ms);
}

/** `runs.blame`: one run's files by duration, or (runs) each file's median and worst over the last `runs` finished journals. */
export async function blameJournals(journals: JournalStore, options: { id?: string | undefined; runs?: number | undefined }, warn: (problem: string) => void): Promise<{ run: RunBlame } | { runs: number; steps: StepStats[] }> {
  if (options.runs === undefined) return { run: blameRun(await journals.read(options.id ?? 'last')) };
  const recent = (await journals.recent(options.runs, warn)).filter((j) => j.status !== 'running');
  if (recent.length === 0) throw new DataError('no run has been recorded yet', 'run bootstrap server.provision first');
  return { runs: recent.length, steps: blameRuns(recent) };
}
