// What both pages share: the one escape function, times in UTC and as ages, and the document
// around a page (inline CSS, a Content-Security-Policy that allows no script at all). Everything a
// callback carried (server names, labels, messages, change lines) is attacker-controlled: it goes
// through esc() and nowhere else, and the policy keeps the page inert should one ever slip through.

/** The one escape for text and attribute values: a hostile server must not put markup in the operator's page. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A link to a server's page; the name is encoded for the path, then escaped for the attribute. */
export function serverHref(server: string): string {
  return esc(`/servers/${encodeURIComponent(server)}`);
}

/** `2026-12-05 14:00:27 UTC` in a <time> element; what does not parse is shown as it came, escaped. */
export function utc(t: string | null | undefined): string {
  if (!t) return '<span class="none">never</span>';
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) return `<time>${esc(t)}</time>`;
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC</time>`;
}

/** How long before `now` a time was: `42 s`, `5 min`, `3 h`, `2 d` ago (`in …` for a clock ahead). */
export function age(t: string | null | undefined, now: string): string {
  const ms = Date.parse(now) - Date.parse(t ?? '');
  if (Number.isNaN(ms)) return '';
  const s = Math.abs(ms) / 1000;
  const text = s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} d`;
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** A time as its age, with the UTC time beneath. */
export function when(t: string | null | undefined, now: string): string {
  if (!t) return utc(t);
  const a = age(t, now);
  return `${a ? `<span class="age">${a}</span><br>` : ''}<small>${utc(t)}</small>`;
}

/** `1.234 s`, `850 ms`, `2 min 5 s`. */
export function duration(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A state or status as a coloured badge; the class comes from a fixed list, never from the data. */
export function badge(value: string, text: string = value): string {
  return `<span class="badge ${statusClass(value)}">${esc(text)}</span>`;
}

const classes: Record<string, string> = {
  unresponsive: 'grey',
  failed: 'bad',
  failure: 'bad',
  refused: 'bad',
  rebooting: 'info',
  disabled: 'warn',
  drifted: 'warn',
  drift: 'warn',
  changed: 'note',
  unchanged: 'good',
  success: 'good',
};

export function statusClass(value: string): string {
  return Object.hasOwn(classes, value) ? classes[value]! : 'plain';
}

/** Product → version, as `haproxy 2.8, nginx —`. */
export function products(p: Record<string, string | null> | null | undefined): string {
  const entries = Object.entries(p ?? {});
  if (!entries.length) return '<span class="none">none</span>';
  return entries.map(([name, v]) => `<span class="product">${esc(name)} ${v === null ? '—' : esc(v)}</span>`).join(' ');
}

/** No script, no asset from anywhere: styles inline, images only as data: URLs. */
export const policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'";

/** The whole document. `title` is escaped here; `body` is HTML the page built from escaped parts. */
export function document(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${policy}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${css}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

const css = `
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px; color: #1d2329; background: #fafbfc; max-width: 1600px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; } h3 { font-size: 14px; margin: 0; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
.meta, small, .none { color: #5c6670; } .age { font-weight: 600; }
ul.counts { list-style: none; display: flex; flex-wrap: wrap; gap: 8px; padding: 0; margin: 12px 0; }
li.count { border: 1px solid #d0d7de; border-left-width: 6px; border-radius: 4px; padding: 6px 12px; min-width: 96px; background: #fff; }
li.count b { display: block; font-size: 22px; } li.count.zero { opacity: .55; } li.count a { color: inherit; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid #e3e7eb; padding: 5px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f0f3f6; font-weight: 600; white-space: nowrap; } th a { color: inherit; } th .arrow { color: #0b5cad; }
table.fleet { table-layout: fixed; } table.fleet th { white-space: normal; }
table.facts { width: auto; min-width: 50%; } table.facts th { width: 180px; text-align: right; }
tr.server.bad td:first-child { box-shadow: inset 4px 0 #c62828; } tr.server.grey td:first-child { box-shadow: inset 4px 0 #6e7781; }
tr.server.warn td:first-child { box-shadow: inset 4px 0 #d97706; } tr.server.info td:first-child { box-shadow: inset 4px 0 #1f6feb; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: #6e7781; white-space: nowrap; max-width: 14em; overflow: hidden; text-overflow: ellipsis; vertical-align: text-bottom; }
.nowrap { white-space: nowrap; overflow-wrap: normal; }
.badge.bad { background: #c62828; } .badge.warn { background: #b45309; } .badge.info { background: #1f6feb; }
.badge.note { background: #0e7c86; } .badge.good { background: #2e7d32; } .badge.grey { background: #57606a; } .badge.plain { background: #8c959f; }
li.count.bad { border-left-color: #c62828; } li.count.warn { border-left-color: #b45309; } li.count.info { border-left-color: #1f6feb; }
li.count.note { border-left-color: #0e7c86; } li.count.good { border-left-color: #2e7d32; } li.count.grey { border-left-color: #57606a; } li.count.plain { border-left-color: #8c959f; }
.product { display: inline-block; max-width: 100%; background: #eef1f4; border-radius: 3px; padding: 0 5px; margin: 1px 2px 1px 0; font-family: ui-monospace, monospace; font-size: 12px; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; }
section.run { border: 1px solid #d0d7de; border-left-width: 6px; border-radius: 4px; background: #fff; padding: 8px 12px; margin: 12px 0; }
section.run.bad { border-left-color: #c62828; } section.run.warn { border-left-color: #b45309; } section.run.info { border-left-color: #1f6feb; }
section.run.good { border-left-color: #2e7d32; } section.run.plain { border-left-color: #8c959f; }
section.run table { margin-top: 6px; } .failure th { color: #c62828; }
.bar { height: 10px; background: #1f6feb; border-radius: 2px; min-width: 1px; } .bar.bad { background: #c62828; }
ul.changes { margin: 2px 0 6px; padding-left: 20px; }
`;
