// A server's page: its row of the fleet list as a table, then its last runs (and checkups and
// verifies), newest first: a summary table linking to one section per run with its failure,
// step counts, changes and per-phase timings.

import type { RunView, ServerView } from '../view.js';
import { badge, document, duration, esc, products, statusClass, utc, when } from './html.js';

export interface ServerPageOptions {
  /** How many runs were asked for: when the view holds that many, the page links to twice as many. */
  runs?: number;
}

export function renderServerPage(v: ServerView, o: ServerPageOptions = {}): string {
  const more = o.runs && v.runs.length >= o.runs ? ` · <a href="?runs=${esc(o.runs * 2)}">older runs</a>` : '';
  const body = `<header>
<div class="meta"><a href="/">← Fleet</a></div>
<h1 id="server">${esc(v.server.server)} ${badge(v.server.state)}</h1>
<div class="meta">Generated ${utc(v.generated_at)}</div>
</header>
${facts(v)}
<h2>Last ${v.runs.length} ${v.runs.length === 1 ? 'callback' : 'callbacks'}${more}</h2>
${v.runs.length ? runTable(v) : '<p class="none">None stored.</p>'}
${v.runs.map((r) => runSection(r, v.generated_at)).join('\n')}`;
  return document(`${v.server.server}: ${v.server.state}`, body);
}

function facts(v: ServerView): string {
  const r = v.server;
  const now = v.generated_at;
  const run = r.last_run;
  const rows: Array<[string, string]> = [
    ['State', `${badge(r.state)}${r.drifted ? ' <small>its last verify found drift</small>' : ''}`],
    ['Last report', `${when(r.last_report_at, now)}<br><small>${esc(r.last_kind)}: ${esc(r.last_status)}${r.last_label ? ` · ${esc(r.last_label)}` : ''}</small>`],
    ['Last run', run ? `<a href="#run-${esc(run.id)}">${esc(run.id)}</a> ${esc(run.action)} ${badge(run.status)}${run.label ? ` · ${esc(run.label)}` : ''}<br>${when(run.finished_at, now)}` : '<span class="none">none yet</span>'],
    ['Mode', esc(r.mode)],
    ['Products', products(r.products)],
    ['Last success', when(r.last_success_at, now)],
    ['Failed runs since', esc(r.failed_runs_since_success)],
    ['Healthy', r.healthy === null ? '<span class="none">unknown</span>' : r.healthy ? badge('success', 'yes') : badge('failure', 'no')],
    ['Disabled', r.disabled ? `${esc(r.disabled.reason)}<br><small>by ${esc(r.disabled.by)}, ${when(r.disabled.since, now)}</small>` : 'no'],
  ];
  return `<table class="facts" id="facts">\n${rows.map(([k, val]) => `<tr><th>${k}</th><td>${val}</td></tr>`).join('\n')}\n</table>`;
}

function runTable(v: ServerView): string {
  const row = (r: RunView) =>
    `<tr class="run" data-run="${esc(r.id)}" data-status="${esc(r.status)}"><td class="nowrap"><a href="#run-${esc(r.id)}">${esc(r.id)}</a></td><td class="nowrap">${esc(r.kind)}</td><td class="nowrap">${esc(r.action)}</td><td>${badge(r.status)}</td><td>${esc(r.label ?? '')}</td><td class="nowrap">${utc(r.finished_at)}</td><td class="nowrap">${duration(r.duration_ms)}</td><td>${esc(r.exit_code)}</td><td>${stepCounts(r)}</td></tr>`;
  return `<table class="runs" id="runs">
<thead><tr><th>Run</th><th>Kind</th><th>Action</th><th>Status</th><th>Label</th><th>Finished</th><th>Duration</th><th>Exit</th><th title="changed / unchanged / skipped / failed">Steps: chg / unch / skip / fail</th></tr></thead>
<tbody>
${v.runs.map(row).join('\n')}
</tbody>
</table>`;
}

function stepCounts(r: RunView): string {
  const c = r.counts;
  return c ? `${esc(c.changed)} / ${esc(c.unchanged)} / ${esc(c.skipped)} / ${esc(c.failed)}` : '<span class="none">—</span>';
}

function runSection(r: RunView, now: string): string {
  const times = `started ${utc(r.started_at)} · finished ${utc(r.finished_at)} (${duration(r.duration_ms)}) · received ${when(r.received_at, now).replace('<br>', ' ')}`;
  return `<section class="run ${statusClass(r.status)}" id="run-${esc(r.id)}" data-run="${esc(r.id)}" data-status="${esc(r.status)}">
<h3>${r.kind === r.action ? esc(r.kind) : `${esc(r.kind)} ${esc(r.action)}`} ${badge(r.status)} <small>${esc(r.id)}${r.label ? ` · ${esc(r.label)}` : ''} · exit ${esc(r.exit_code)}</small></h3>
<div class="meta">${times}</div>
${r.failure ? failure(r) : ''}
${r.counts ? `<div class="counts">Steps: ${esc(r.counts.changed)} changed, ${esc(r.counts.unchanged)} unchanged, ${esc(r.counts.skipped)} skipped, ${esc(r.counts.failed)} failed</div>` : ''}
${changes(r)}
${phases(r)}
</section>`;
}

function failure(r: RunView): string {
  const f = r.failure!;
  return `<table class="facts failure">
<tr><th>Failed in</th><td><pre>${esc(f.phase)} / ${esc(f.step)}</pre></td></tr>
<tr><th>Kind</th><td>${esc(f.kind)}${f.exit_code === null ? '' : `, exit ${esc(f.exit_code)}`}</td></tr>
<tr><th>Message</th><td><pre class="message">${esc(f.message)}</pre></td></tr>
${f.output_tail ? `<tr><th>Output (last lines)</th><td><pre class="output">${esc(f.output_tail)}</pre></td></tr>` : ''}
</table>`;
}

function changes(r: RunView): string {
  if (!r.changes.length) return '';
  const step = (c: RunView['changes'][number]) =>
    `<li><pre>${esc(c.phase)} / ${esc(c.step)}</pre><ul class="changes">${c.changes.map((line) => `<li><pre>${esc(line)}</pre></li>`).join('')}</ul></li>`;
  return `<div>Changes:</div><ul class="changes">${r.changes.map(step).join('')}</ul>`;
}

/** Per phase: status, steps, failed, time, and a bar of its share of the run's phases. */
function phases(r: RunView): string {
  if (!r.phases.length) return '';
  const total = Math.max(1, ...r.phases.map((p) => p.duration_ms));
  const row = (p: RunView['phases'][number]) => {
    const width = Math.max(0, Math.min(100, (p.duration_ms / total) * 100)).toFixed(1);
    return `<tr class="phase" data-phase="${esc(p.phase)}"><td>${esc(p.phase)}</td><td>${badge(p.status)}</td><td>${esc(p.steps)}</td><td>${esc(p.failed)}</td><td>${duration(p.duration_ms)}</td><td style="width:40%"><div class="bar${p.failed ? ' bad' : ''}" style="width:${width}%"></div></td></tr>`;
  };
  return `<table class="phases"><thead><tr><th>Phase</th><th>Status</th><th>Steps</th><th>Failed</th><th>Time</th><th></th></tr></thead><tbody>${r.phases.map(row).join('')}</tbody></table>`;
}
