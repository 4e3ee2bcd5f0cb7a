// The fleet page: the counts by state, then one row per server, sortable by a query parameter
// (`/?sort=last_report&order=desc`) so that no script is needed, and filterable by state
// (`/?state=failed`, the counts link there).

import type { FleetView, ServerRow, ServerState } from '../view.js';
import { badge, document, esc, products, serverHref, statusClass, when } from './html.js';

/** The columns the list sorts by. */
export const fleetSorts = ['server', 'state', 'last_report', 'last_run', 'mode', 'last_success', 'failures'] as const;
export type FleetSort = (typeof fleetSorts)[number];

export interface FleetPageOptions {
  /** Default last_report, oldest first: the silent servers on top. */
  sort?: FleetSort;
  order?: 'asc' | 'desc';
  /** Only the servers in this state. */
  state?: ServerState | null;
}

/** Worst first: the order of the counts and of `sort=state`. */
export const serverStates: readonly ServerState[] = ['unresponsive', 'failed', 'rebooting', 'disabled', 'drifted', 'changed', 'unchanged'];

/** The page's options from a request's query; anything unknown is ignored (the defaults apply). */
export function parseFleetQuery(q: URLSearchParams): FleetPageOptions {
  const sort = q.get('sort');
  const order = q.get('order');
  const state = q.get('state');
  return {
    sort: (fleetSorts as readonly string[]).includes(sort ?? '') ? (sort as FleetSort) : 'last_report',
    order: order === 'desc' ? 'desc' : 'asc',
    state: (serverStates as readonly string[]).includes(state ?? '') ? (state as ServerState) : null,
  };
}

/** What each column sorts on; a missing time sorts as the oldest, ties go by server name. */
const sortKeys: Record<FleetSort, (r: ServerRow) => string | number> = {
  server: (r) => r.server,
  state: (r) => serverStates.indexOf(r.state),
  last_report: (r) => timeOf(r.last_report_at),
  last_run: (r) => timeOf(r.last_run?.finished_at),
  mode: (r) => r.mode,
  last_success: (r) => timeOf(r.last_success_at),
  failures: (r) => r.failed_runs_since_success,
};

function timeOf(t: string | null | undefined): number {
  const ms = Date.parse(t ?? '');
  return Number.isNaN(ms) ? -Infinity : ms;
}

/** A sorted copy (stable; ties by server name, always ascending). */
export function sortServers(rows: readonly ServerRow[], sort: FleetSort = 'last_report', order: 'asc' | 'desc' = 'asc'): ServerRow[] {
  const key = sortKeys[sort];
  const sign = order === 'desc' ? -1 : 1;
  const cmp = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows].sort((a, b) => sign * cmp(key(a), key(b)) || cmp(a.server, b.server));
}

export function renderFleetPage(v: FleetView, o: FleetPageOptions = {}): string {
  const sort = o.sort ?? 'last_report';
  const order = o.order ?? 'asc';
  const rows = sortServers(o.state ? v.servers.filter((r) => r.state === o.state) : v.servers, sort, order);
  const shown = o.state ? ` · showing the ${rows.length} ${esc(o.state)} (<a href="${queryHref(sort, order, null)}">all</a>)` : '';
  const body = `<header>
<h1>Fleet</h1>
<div class="meta">Generated ${when(v.generated_at, v.generated_at)} · unresponsive after ${threshold(v.unresponsive_after_s)} without a callback${shown}</div>
</header>
${counts(v)}
<table class="fleet" id="servers">
<thead><tr>${headers(sort, order, o.state ?? null)}</tr></thead>
<tbody>
${rows.map((r) => serverRow(r, v.generated_at)).join('\n') || '<tr><td colspan="10" class="none">No server has called back yet.</td></tr>'}
</tbody>
</table>`;
  return document(`Fleet: ${v.counts.total} servers, ${v.counts.failed} failed, ${v.counts.unresponsive} unresponsive`, body);
}

function threshold(s: number): string {
  return s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

function counts(v: FleetView): string {
  const item = (state: string, n: number, cls: string, label: string) =>
    `<li class="count ${cls}${n ? '' : ' zero'}" data-state="${state}"><a href="${queryHref('last_report', 'asc', state === 'total' ? null : state)}"><b>${n}</b> ${label}</a></li>`;
  const items = serverStates.map((s) => item(s, v.counts[s] ?? 0, statusClass(s), s));
  items.push(item('total', v.counts.total, 'plain', 'total'));
  return `<ul class="counts" id="counts">\n${items.join('\n')}\n</ul>`;
}

function queryHref(sort: FleetSort, order: 'asc' | 'desc', state: string | null): string {
  const q = new URLSearchParams({ sort, order });
  if (state) q.set('state', state);
  return esc(`?${q}`);
}

/** Title, sort key, width (%): fixed widths, so a long hostile string wraps in its cell instead of widening the table. */
const columns: Array<[string, FleetSort | null, number]> = [
  ['Server', 'server', 12],
  ['State', 'state', 8],
  ['Last report', 'last_report', 13],
  ['Last run', 'last_run', 15],
  ['Mode', 'mode', 7],
  ['Products', null, 12],
  ['Last success', 'last_success', 11],
  ['Failures since', 'failures', 6],
  ['Healthy', null, 6],
  ['Disabled', null, 10],
];

/** Each sortable header links to its sort; the current one to the other order, with an arrow. */
function headers(sort: FleetSort, order: 'asc' | 'desc', state: string | null): string {
  return columns
    .map(([title, key, width]) => {
      if (!key) return `<th style="width:${width}%">${title}</th>`;
      const current = key === sort;
      const next = current && order === 'asc' ? 'desc' : 'asc';
      const arrow = current ? ` <span class="arrow">${order === 'asc' ? '▲' : '▼'}</span>` : '';
      return `<th style="width:${width}%" data-sort="${key}"${current ? ` aria-sort="${order}ending"` : ''}><a href="${queryHref(key, next, state)}">${title}</a>${arrow}</th>`;
    })
    .join('');
}

function serverRow(r: ServerRow, now: string): string {
  const cells = [
    `<a href="${serverHref(r.server)}">${esc(r.server)}</a>`,
    `${badge(r.state)}${r.drifted && r.state !== 'drifted' ? ' <small>drifted</small>' : ''}`,
    `${when(r.last_report_at, now)}<br><small>${esc(r.last_kind)}: ${esc(r.last_status)}${r.last_label ? ` · ${esc(r.last_label)}` : ''}</small>`,
    lastRun(r, now),
    esc(r.mode),
    products(r.products),
    when(r.last_success_at, now),
    `<span class="${r.failed_runs_since_success ? 'badge bad' : 'none'}">${esc(r.failed_runs_since_success)}</span>`,
    r.healthy === null ? '<span class="none">—</span>' : r.healthy ? badge('success', 'yes') : badge('failure', 'no'),
    r.disabled ? `${esc(r.disabled.reason)}<br><small>by ${esc(r.disabled.by)}, ${when(r.disabled.since, now)}</small>` : '',
  ];
  return `<tr class="server ${statusClass(r.state)}" data-server="${esc(r.server)}" data-state="${esc(r.state)}">${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
}

function lastRun(r: ServerRow, now: string): string {
  const run = r.last_run;
  if (!run) return '<span class="none">none yet</span>';
  return `${esc(run.action)} ${badge(run.status)}${run.label ? `<br><small>${esc(run.label)}</small>` : ''}<br>${when(run.finished_at, now)}`;
}
