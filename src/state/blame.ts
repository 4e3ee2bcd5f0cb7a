// runs.blame (cloud-init's `analyze blame`): where a run spent its time, or, over the last N
// runs, each step's median and worst duration. Reads the journals and nothing else.

import type { RunJournal, StepRecord } from './journal.js';

export interface BlameEntry {
  /** `explorer`, a phase, `backout` or `error`. */
  phase: string;
  /** The file: `20-haproxy`, `20-haproxy.check`, `20-haproxy.if`, `20-haproxy.backout`. */
  name: string;
  role: StepRecord['role'];
  status: StepRecord['status'];
  duration_ms: number;
  /** Its share of the run's duration, 0..1 (explorers run in parallel: their shares overlap). */
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
  role: StepRecord['role'];
  /** In how many of the runs it ran. */
  runs: number;
  median_ms: number;
  worst_ms: number;
  /** The run of the worst duration. */
  worst_run: string;
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
  const entries = filesOf(j)
    .map((s) => ({ phase: s.phase, name: s.name, role: s.role, status: s.status, duration_ms: s.duration_ms, share: Math.round((s.duration_ms / total) * 1000) / 1000 }))
    .sort((a, b) => b.duration_ms - a.duration_ms);
  return { id: j.id, action: j.action, status: j.status, duration_ms: j.duration_ms, entries };
}

/** Per file (phase + name), over the journals given: median and worst, slowest median first. */
export function blameRuns(journals: RunJournal[]): StepStats[] {
  const byFile = new Map<string, { s: StepRecord; durations: { ms: number; run: string }[] }>();
  for (const j of journals) {
    for (const s of filesOf(j)) {
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
