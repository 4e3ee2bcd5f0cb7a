// Human output of the commands (the --json output is the data itself).

import type { StatusReport } from '../agent.js';
import type { LastRun, PausedRun } from '../state/state.js';
import { DisabledError, oneLine } from '../errors.js';
import { basename } from 'node:path';
import { describeRefused, type Plan } from '../pipeline/plan.js';
import { describeVersionDrift, type EffectiveProduct } from '../products.js';
import type { DryRunReport } from '../run/index.js';
import { changesOf, describeRunCounts, failurePlace, type FailureRecord, type RunJournal, type StepRecord } from '../state/journal.js';
import type { FactsDoc } from '../facts/facts.js';
import type { RunBlame, StepStats } from '../state/blame.js';
import type { Checkup } from '../heartbeat/types.js';

export function formatSettingValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  return String(value);
}

export function formatProducts(products: EffectiveProduct[], showOrigin: boolean): string {
  const lines: string[] = [];
  for (const p of products) {
    const drift = describeVersionDrift(p);
    lines.push(`${p.name} ${p.version ?? '(no version)'}${p.enabled ? '' : ' (disabled)'}${drift ? `  (${drift})` : ''}`);
    const width = Math.max(0, ...p.settings.map((s) => s.name.length));
    for (const s of p.settings) {
      const value = s.value === null ? '(unset)' : formatSettingValue(s.value);
      lines.push(`  ${s.name.padEnd(width)} = ${value}${showOrigin ? `\t(${s.origin}, ${s.type})` : ''}`);
    }
  }
  return lines.join('\n');
}

export function formatStatus(s: StatusReport, now = Date.now()): string {
  const drifts = s.products.map(describeVersionDrift).filter((d): d is string => d !== null);
  const rows: [string, string][] = [
    ['server', s.server],
    ['mode', `${s.mode}${s.modeOrigin === 'default' ? ' (default)' : ''}`],
    ['provisioned', s.provisionedAt ? `yes, ${formatWhen(s.provisionedAt, now)}` : 'no'],
    ['products', s.products.map((p) => `${p.name} ${p.version ?? '?'}${p.enabled ? '' : ' (disabled)'}`).join(', ') || '(none declared)'],
    ...drifts.map((d) => ['version', d] as [string, string]),
    ['last run', s.lastRun ? formatLastRun(s.lastRun, now) : 'none'],
    ['last success', formatLastSuccess(s, now)],
    ['lock', formatLock(s.lock)],
    ...(s.pausedRun ? [['reboot', formatPaused(s.pausedRun)] as [string, string]] : []),
    ...(s.disabled ? [['disabled', `${DisabledError.line(s.disabled).replace(/^disabled /, '')}; runs exit 75 (the timer's: 0) until bootstrap server.enable`] as [string, string]] : []),
    ['heartbeat', formatCheckup(s.lastCheckup, now)],
    ['callbacks', `${s.callbacks.pending} pending${s.callbacks.oldestAgeSeconds !== null ? `, oldest ${s.callbacks.oldestAgeSeconds} s old` : ''}${s.callbacks.dead ? `, ${s.callbacks.dead} dead` : ''}`],
    ['phases version', s.phasesVersion ?? 'unknown (no VERSION file in the phases tree)'],
    ['state dir', s.stateDir],
    ['config', s.config],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join('\n');
}

function formatLastRun(r: LastRun, now: number): string {
  const how = r.status === 'refused' ? `exit ${r.exit_code}, refused before its first step` : `${(r.duration_ms / 1000).toFixed(1)} s`;
  return `${r.action} ${r.status} ${formatWhen(r.finished_at, now)} (${how}, run ${r.id})`;
}

/** `provision at T (run ID); 2 failed runs since`. */
function formatLastSuccess(s: StatusReport, now: number): string {
  const n = s.failedRunsSinceSuccess;
  const since = n === 0 ? '' : `; ${n} failed run${n === 1 ? '' : 's'} since`;
  return s.lastSuccess ? `${s.lastSuccess.action} ${formatWhen(s.lastSuccess.finished_at, now)} (run ${s.lastSuccess.id})${since}` : `none${since}`;
}

function formatPaused(p: PausedRun): string {
  const state = p.resuming ? `resuming since ${p.resuming.started_at}` : 'waiting';
  return `run ${p.id} (${p.action}) ${state}: ${p.phase}/${p.step} asked for a reboot at ${p.requested_at} (${p.reason}); reboot ${p.reboots}; other runs exit 75 until bootstrap server.resume (or --abandon)`;
}

function formatLock(lock: StatusReport['lock']): string {
  if (lock.state === 'free') return 'free';
  if (!lock.owner) return `being taken (${lock.path})`;
  const who = `${lock.owner.command} (pid ${lock.owner.pid}, started ${lock.owner.startedAt})`;
  return lock.state === 'dead' ? `left by a dead process: ${who}; the next run takes it over` : `held by ${who}`;
}

function formatCheckup(checkup: unknown, now: number): string {
  const c = checkup as { healthy?: boolean; finished_at?: string; results?: { name: string; healthy: boolean }[] } | null;
  if (!c || typeof c !== 'object') return 'never checked';
  const bad = (c.results ?? []).filter((r) => !r.healthy).map((r) => r.name);
  return `${c.healthy ? 'healthy' : `unhealthy (${bad.join(', ')})`} ${c.finished_at ? formatWhen(c.finished_at, now) : 'at ?'}`;
}

/** `3 min ago (2026-12-05T00:14:02.120Z)`: how old, then when exactly (a stale status reads as one). */
export function formatWhen(iso: string, now: number): string {
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return `at ${iso}`;
  return `${formatAge(ms)} (${iso})`;
}

function formatAge(ms: number): string {
  if (ms < -5000) return 'in the future (is the clock right?)';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min ago`;
  return `${Math.floor(h / 24)} days ago`;
}

export function formatPlan(plan: Plan): string {
  const lines = [`phases dir: ${plan.baseDir}`];
  if (plan.environment.files.length || plan.environment.skipped.length) {
    lines.push(`environment.d: ${plan.environment.files.map((f) => basename(f)).join(', ') || '(none)'}`);
    for (const s of plan.environment.skipped) lines.push(`  skipped ${s.name}: ${s.reason}`);
  }
  if (plan.explorers.exists) lines.push(`explorer.d: ${plan.explorers.steps.map((s) => s.name).join(', ') || '(none)'}`, ...plan.explorers.skipped.map((s) => `       skipped ${s.name}: ${s.reason}`));
  for (const phase of [...plan.phases, plan.error]) {
    if (!phase.exists) {
      lines.push(`${phase.phase}.d: (missing, skipped)`);
      continue;
    }
    lines.push(`${phase.phase}.d: ${phase.steps.length} step${phase.steps.length === 1 ? '' : 's'}`);
    phase.steps.forEach((s, i) => {
      const extra = [s.condition ? '+if' : '', s.check ? '+check' : '', s.backout ? '+backout' : ''].filter(Boolean).join(' ');
      lines.push(`  ${String(i + 1).padStart(3)}. ${s.name}${extra ? `  ${extra}` : ''}`);
    });
    for (const s of phase.skipped) lines.push(`       skipped ${s.name}: ${s.reason}`);
  }
  for (const r of plan.refused) lines.push(`REFUSED ${describeRefused(r)}`);
  return lines.join('\n');
}

export function formatDryRun(report: DryRunReport): string {
  const bad = report.syntax.filter((s) => !s.ok);
  const lines = [...formatDryRunChange(report), formatPlan(report.plan), ''];
  if (report.preview) {
    const conditions = report.plan.phases.reduce((n, p) => n + p.steps.filter((s) => s.condition).length, 0);
    lines.push(`a run now would (${report.explorers.length} explorer${report.explorers.length === 1 ? '' : 's'} and ${conditions} .if file${conditions === 1 ? '' : 's'} ran to tell):`);
    for (const e of report.explorers.filter((x) => x.status === 'failure')) lines.push(`  FAIL explorer/${e.name}: ${e.message}`);
    for (const p of report.preview) lines.push(`  ${p.verdict === 'run' ? 'run ' : p.verdict === 'skip' ? 'skip' : 'FAIL'} ${p.phase}/${p.step}${p.reason ? `: ${p.reason}` : ''}${p.may_reboot && p.verdict === 'run' ? '  (may ask for a reboot)' : ''}`);
  }
  lines.push(`dry run: no step was run and nothing was changed; ${report.syntax.length} files syntax-checked where sh/bash`);
  for (const s of bad) lines.push(`syntax error in ${s.phase}/${s.step}: ${s.message}`);
  if (report.refusal) lines.push(`dry run: a run would refuse to start: ${report.refusal}`);
  if (report.failure) lines.push(`dry run: the run would fail at ${report.failure}`);
  const problems = [bad.length ? `${bad.length} syntax error${bad.length === 1 ? '' : 's'}` : '', report.failure ? 'it would fail' : ''].filter(Boolean).join(', ');
  lines.push(report.ok ? 'dry run: ok' : `dry run: ${report.refusal ? 'refused' : problems}`);
  return lines.join('\n');
}

/** An upgrade's versions, first: `upgrade: web 1.1 → 1.2`. */
function formatDryRunChange({ upgrade }: DryRunReport): string[] {
  if (!upgrade) return [];
  return [`upgrade: ${upgrade.product} ${upgrade.from ?? '(no version recorded)'} → ${upgrade.to}${upgrade.from === upgrade.to ? ' (the version in force: the run repeats it)' : ''}`];
}

export function formatOutcome(j: RunJournal, path: string | null): string {
  const changes = changesOf(j).flatMap((c) => c.changes.map((line) => `  ${c.phase}/${c.step}: ${line}`));
  const fail = j.failure ? `\nfailed at ${describeFailureAt(j.failure)}` : '';
  const reboot = j.status === 'rebooting' && j.reboots?.length ? `\npaused: ${j.reboots.at(-1)!.phase}/${j.reboots.at(-1)!.step} asked for a reboot (${j.reboots.at(-1)!.reason}); bootstrap server.resume continues the run after it` : '';
  const since = j.status === 'failure' && j.failed_runs_since_success !== undefined ? `\n${formatJournalSuccess(j)}` : '';
  // The journal's line only when it was written: a hint to a file that is not there misleads.
  const journal = path ? `\njournal: ${path} (bootstrap runs.show ${j.id})` : '';
  return `${j.action} ${j.status}: ${formatCounts(j)}, ${(j.duration_ms / 1000).toFixed(1)} s${reboot}${fail}${since}${changes.length ? `\nchanges:\n${changes.join('\n')}` : ''}${journal}`;
}

/** `5 steps: 1 changed, 3 unchanged, 1 skipped, 0 failed`; a run failed by the health gate says so instead of `0 failed`. */
function formatCounts(j: RunJournal): string {
  return describeRunCounts(j);
}

/** `configure/40-myapp-validate: exit 1`, `the health gate (web): unhealthy after 60 s: …`: one line, escaped. */
export function describeFailureAt(f: FailureRecord): string {
  return oneLine(`${failurePlace(f)}: ${f.message}`);
}

export function formatFacts(doc: FactsDoc, valuesOnly: boolean): string {
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const entries = Object.entries(doc.facts);
  if (valuesOnly) return entries.map(([, v]) => show(v)).join('\n');
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  const lines = entries.map(([k, v]) => `${k.padEnd(width)}  ${show(v)}`);
  lines.push(`(collected ${doc.collected_at}${doc.failed?.length ? `; failed: ${doc.failed.join(', ')}` : ''})`);
  return lines.join('\n');
}

export function formatBlame(b: { run: RunBlame } | { runs: number; steps: StepStats[] }): string {
  if ('run' in b) {
    const r = b.run;
    const head = `run ${r.id}: ${r.action} ${r.status}, ${(r.duration_ms / 1000).toFixed(2)} s`;
    const refused = r.status === 'refused' ? ['  (refused before its first step: nothing ran; bootstrap runs.show says why)'] : [];
    return [head, ...refused, ...r.entries.map((e) => `${`${e.duration_ms} ms`.padStart(10)}  ${`${(e.share * 100).toFixed(1)}%`.padStart(6)}  ${blameName(e)}${e.status === 'failure' ? '  (failed)' : ''}`)].join('\n');
  }
  const head = `over the last ${b.runs} run${b.runs === 1 ? '' : 's'}: median, worst, runs`;
  return [head, ...b.steps.map((s) => `${`${s.median_ms} ms`.padStart(10)}  ${`${s.worst_ms} ms`.padStart(10)}  ${String(s.runs).padStart(4)}  ${blameName(s)}`)].join('\n');
}

/** `configure/20-haproxy`, or the agent's own row as it is: `(lock wait)`. */
function blameName(e: { role: string; phase: string; name: string }): string {
  return e.role === 'agent' ? e.name : `${e.phase}/${e.name}`;
}

/** A failure reason in runs.list is cut here (with a visible `…`) unless --wide. */
export const runListReasonChars = 160;

/**
 * runs.list, in the order given (newest first): one line a run. `gone`: the ids of running
 * journals whose run no longer holds the run lock (shown `interrupted`).
 */
export function formatRunList(runs: RunJournal[], options: { wide?: boolean; gone?: ReadonlySet<string> } = {}): string {
  if (runs.length === 0) return 'no runs recorded';
  let cut = false;
  const lines = runs.map((j) => {
    const status = j.status === 'running' && options.gone?.has(j.id) ? 'interrupted' : j.status;
    let reason = j.failure ? describeFailure(j) : status === 'interrupted' ? 'its agent is gone (no run holds the run lock)' : '';
    if (!options.wide && reason.length > runListReasonChars) [reason, cut] = [`${reason.slice(0, runListReasonChars - 1)}…`, true];
    return `${j.id}  ${j.action.padEnd(9)} ${status.padEnd(9)} ${(j.duration_ms / 1000).toFixed(1).padStart(7)} s${reason ? `  ${reason}` : ''}`;
  });
  if (cut) lines.push(`(reasons cut at ${runListReasonChars} characters: runs.list --wide shows them whole, runs.show ID shows one run)`);
  return lines.join('\n');
}

/** `configure/20-haproxy: check 20-haproxy.check: exit 1`; a refusal: `exit 77: refusing to run …`. One line, escaped. */
function describeFailure(j: RunJournal): string {
  const f = j.failure!;
  if (f.kind !== 'refused') return describeFailureAt(f);
  return oneLine(`exit ${j.exit_code}: ${f.message}`);
}

/** `alive`: for a running run, whether its agent still holds the lock (null: not running). */
export function formatJournal(j: RunJournal, alive: boolean | null = null): string {
  const running = j.status === 'running';
  const now = running ? `now at ${j.current ? `${j.current.phase}/${j.current.step} (for ${((Date.now() - Date.parse(j.current.started_at)) / 1000).toFixed(0)} s or more)` : 'a phase boundary'}` : '';
  const lines = [
    running
      ? `run ${j.id}: ${j.action} running${alive === false ? ' — its agent is gone: the next run records it as failed' : `, ${now}`}`
      : `run ${j.id}: ${j.action} ${j.status} (exit ${j.exit_code})`,
    running
      ? `started ${j.started_at} (${((Date.now() - Date.parse(j.started_at)) / 1000).toFixed(0)} s ago)`
      : `started ${j.started_at}, finished ${j.finished_at} (${(j.duration_ms / 1000).toFixed(1)} s)`,
    `server ${j.server}, mode ${j.mode}${j.mode_previous ? ` (was ${j.mode_previous})` : ''}${j.product ? `, ${j.product} ${j.version_previous ?? '?'} → ${j.version}` : ''}`,
    `phases dir ${j.phases_dir ?? '(not known)'}`,
  ];
  if (j.failure?.kind === 'refused') lines.push(`refused before its first step: ${j.failure.message}`);
  else if (j.failure) lines.push(`failed at ${describeFailureAt(j.failure)}`);
  if (j.failed_runs_since_success !== undefined) lines.push(formatJournalSuccess(j));
  if (!running && j.counts) lines.push(formatCounts(j));
  for (const r of j.reboots ?? []) lines.push(`reboot asked by ${r.phase}/${r.step} at ${r.requested_at}: ${r.reason}`);
  if ((j.boots?.length ?? 0) > 1 || j.status === 'rebooting') lines.push(`boots: ${(j.boots ?? []).map((b) => `${b.boot_id ?? '?'} (from ${b.started_at})`).join(', ')}${j.status === 'rebooting' ? ', then waiting for the reboot' : ''}`);
  if (j.explorers?.length) lines.push(`explorers: ${j.explorers.length}`, ...j.explorers.flatMap((s) => formatStep(s, '  ')));
  for (const p of j.phases) {
    lines.push(`${p.phase}: ${p.status}${p.steps.length ? ` (${(p.duration_ms / 1000).toFixed(1)} s)` : ''}`);
    for (const s of p.steps) lines.push(...formatStep(s, '  '));
  }
  if (j.backouts.length) lines.push('backouts:', ...j.backouts.flatMap((s) => formatStep(s, '  ')));
  if (j.error_steps.length) lines.push('error.d:', ...j.error_steps.flatMap((s) => formatStep(s, '  ')));
  return lines.join('\n');
}

/** `last success: this run` / `last success: provision at T (run ID); 3 failed runs since (this one included)`. */
function formatJournalSuccess(j: RunJournal): string {
  const last = j.last_success;
  if (last?.id === j.id) return 'last success: this run';
  const n = j.failed_runs_since_success ?? 0;
  return `last success: ${last ? `${last.action} at ${last.finished_at} (run ${last.id})` : 'none'}; ${n} failed run${n === 1 ? '' : 's'} since (this one included)`;
}

function formatStep(s: StepRecord, indent: string): string[] {
  const attempts = s.attempts > 1 ? `, ${s.attempts} attempts` : '';
  const mark = s.status === 'success' ? 'ok  ' : s.status === 'skipped' ? 'skip' : 'FAIL';
  const lines = [`${indent}${mark} ${s.name}  ${s.message} (${s.duration_ms} ms${attempts})${s.reboot ? `  — asked for a reboot: ${s.reboot}` : ''}`];
  if (s.condition && s.status !== 'skipped') lines.push(...formatStep(s.condition, `${indent}  `));
  const tail = s.output_tail.trimEnd().split('\n').filter((l) => l !== '').slice(-20);
  for (const l of tail) lines.push(`${indent}     | ${l}`);
  for (const c of s.changes ?? []) lines.push(`${indent}     + ${c}`);
  if (s.changes_truncated) lines.push(`${indent}     + … (more than 64 KiB of changes; cut)`);
  if (s.check) lines.push(...formatStep(s.check, `${indent}  `));
  return lines;
}

export function formatCheckupTable(c: Checkup): string {
  if (c.results.length === 0) return 'no heartbeats are configured ([heartbeat.NAME] sections)';
  const rows = [['NAME', 'TYPE', 'HEALTHY', 'LATENCY', 'DETAIL'], ...c.results.map((r) => [r.name, r.type, r.healthy ? 'yes' : 'NO', `${r.latency_ms} ms`, r.detail])];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i < 4 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n');
}

/** The one-line result of a run, for -q: the timer's journal gets one line per run. */
export function formatOutcomeBrief(j: RunJournal): string {
  return `${j.action} ${j.status} (${formatCounts(j)}; ${(j.duration_ms / 1000).toFixed(1)} s, run ${j.id})${j.failure ? `: failed at ${describeFailureAt(j.failure)}` : ''}`;
}

/** The one-line result of a checkup, for -q. */
export function formatCheckupBrief(c: Checkup): string {
  const bad = c.results.filter((r) => !r.healthy);
  return bad.length === 0 ? `healthy: ${c.results.length}/${c.results.length} checks` : `unhealthy: ${bad.map((r) => `${r.name}: ${r.detail}`).join('; ')}`;
}
