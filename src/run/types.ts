// The shapes of a run: what is asked (RunRequest), what it will change (Intent), what came of
// it (RunOutcome, with the dry run's report), and what a resumed run starts from (Resumed).

import type { Facts } from '../facts/facts.js';
import type { Plan } from '../pipeline/plan.js';
import type { StepPreview } from '../pipeline/preview.js';
import type { SyntaxResult } from '../pipeline/syntax.js';
import type { EffectiveProduct } from '../products.js';
import type { RunJournal, StepRecord } from '../state/journal.js';
import type { PausedRun } from '../state/state.js';

export type RunAction = 'provision' | 'refresh' | 'mode' | 'upgrade';

export interface RunRequest {
  action: RunAction;
  /** provision: the products to run (default: those recorded, else all). */
  products?: string[] | undefined;
  /** mode: the new mode. */
  mode?: string | undefined;
  /** upgrade: the product and its new version (default: the version in bootstrap.ini). */
  product?: string | undefined;
  toVersion?: string | undefined;
  /** upgrade: allow a version lower than the one in force. */
  allowDowngrade?: boolean | undefined;
  dryRun?: boolean | undefined;
  /** undefined: fail at once when another run holds the lock; ms (Infinity: forever) to wait. */
  waitMs?: number | undefined;
  /** Bound on the whole run (default: [phases] run_timeout). */
  timeoutMs?: number | undefined;
  /** Recorded in the journal and callback and given to steps as BOOTSTRAP_LABEL (a rollout id). */
  label?: string | undefined;
  callbackUrl?: string | undefined;
  /** Aborts the run (SIGINT/SIGTERM): the step's group is stopped, the run fails with kind signal. */
  signal?: AbortSignal | undefined;
  /** Aborts backouts and error.d too (a second signal). */
  cleanupSignal?: AbortSignal | undefined;
  /** server.resume: continue the run that waits for its reboot, or end it (abandon). */
  resume?: 'continue' | 'abandon' | undefined;
  onStep?: (event: { phase: string; step: string; index: number; total: number }) => void;
}

export interface DryRunReport {
  action: RunAction;
  /** product.upgrade: the product, the version in force (null: none recorded) and the target. */
  upgrade: { product: string; from: string | null; to: string } | null;
  plan: Plan;
  syntax: SyntaxResult[];
  ok: boolean;
  /** Why a run would refuse to start (the same one-line error), or null. */
  refusal: string | null;
  /** What a run started now would do, step by step (its NAME.if files run); null when refused. */
  preview: StepPreview[] | null;
  /** The facts the preview collected (explorer.d ran; facts.json was not written). */
  facts: Facts | null;
  explorers: StepRecord[];
  /** Where and why the run would fail before or at a step (an explorer, a NAME.if, environment.d), or null. */
  failure: string | null;
}

export interface RunOutcome {
  id: string | null;
  /** Its journal's (rebooting: paused for a reboot a step asked for); nothing: server.resume found no run waiting. */
  status: RunJournal['status'] | 'dry-run' | 'nothing';
  exitCode: number;
  journal: RunJournal | null;
  journalPath: string | null;
  dryRun: DryRunReport | null;
}

/** What the run will change, worked out (and validated) before the lock is taken. */
export interface Intent {
  products: EffectiveProduct[];
  mode: string;
  modePrevious: string | undefined;
  versionPrevious: string | null | undefined;
  toVersion: string | undefined;
}

/** A run resumed after its reboot: its pause and its journal so far. */
export interface Resumed {
  paused: PausedRun;
  journal: RunJournal;
}
