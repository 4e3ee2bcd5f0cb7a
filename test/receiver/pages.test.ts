// The receiver's pages (receiver/src/pages.ts): rendered from fixture views (counts, rows in the
// order asked, hostile strings from callbacks escaped), then loaded in headless Chromium (Debian's
// `chromium`) from files: counts and rows read from the DOM the browser built, nothing injected
// ran, screenshots kept under dist/ (CI artifacts). Then once end to end: the real receiver on
// Node 24 (SQLite in a temp dir) fed signed callbacks, its / page loaded in Chromium.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { escapeHtml, parseFleetQuery, renderFleetPage, renderServerPage, sortServers } from '../../receiver/src/pages.js';
import type { FleetView, RunView, ServerRow, ServerState, ServerView } from '../../receiver/src/view.js';
import { root } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { secretDir, startReceiver } from '../helpers/receiver.js';

const noBrowser = spawnSync('sh', ['-c', 'command -v chromium']).status !== 0 && 'the page tests need chromium (.ci/run installs it)';
if (noBrowser) console.log(`receiver page tests in Chromium skipped: ${noBrowser}`);

/** What a hostile server may put in every string it sends. */
const bad = `<script>document.title='pwned'</script><img src=x onerror="document.title='img'">"q' \`b\` </td></tr></table><a href="javascript:alert(1)">x</a>`;
const now = '2026-12-05T12:00:00.000Z';
const ago = (s: number) => new Date(Date.parse(now) - s * 1000).toISOString();

function row(server: string, state: ServerState, reportAgoS: number, extra: Partial<ServerRow> = {}): ServerRow {
  return {
    server,
    state,
    last_report_at: ago(reportAgoS),
    last_kind: 'run',
    last_status: state === 'failed' ? 'failure' : 'success',
    last_label: null,
    mode: 'active',
    products: { haproxy: '2.8' },
    last_run: { id: '20261205T110000Z-abcdef', action: 'refresh', status: state === 'failed' ? 'failure' : 'success', finished_at: ago(reportAgoS), label: null },
    last_success_at: state === 'failed' ? ago(86_400 * 2) : ago(reportAgoS),
    failed_runs_since_success: state === 'failed' ? 3 : 0,
    disabled: null,
    drifted: state === 'drifted',
    healthy: true,
    ...extra,
  };
}

const servers: ServerRow[] = [
  row('web01', 'unchanged', 120),
  row('web02', 'changed', 60, { last_label: 'rollout-7 batch-1', mode: 'standby' }),
  row('db01', 'failed', 300),
  row('db02', 'failed', 30, { last_success_at: null }),
  row('cache01', 'unresponsive', 7200, { healthy: null }),
  row('lb01', 'rebooting', 10, { last_status: 'rebooting' }),
  row('lb02', 'disabled', 90, { last_kind: 'checkup', disabled: { since: ago(3600), by: 'alice', reason: 'maintenance window' } }),
  row('app01', 'drifted', 45, { last_kind: 'verify', last_status: 'drift' }),
  row(bad, 'failed', 5, { last_label: bad, mode: bad, products: { [bad]: bad }, last_run: { id: bad, action: bad, status: bad, finished_at: bad, label: bad }, disabled: { since: bad, by: bad, reason: bad } }),
];

const fleet: FleetView = {
  generated_at: now,
  unresponsive_after_s: 3600,
  counts: { unresponsive: 1, failed: 3, rebooting: 1, disabled: 1, drifted: 1, changed: 1, unchanged: 1, total: 9 },
  servers: sortServers(servers),
};

function run(id: string, extra: Partial<RunView> = {}): RunView {
  return {
    id,
    kind: 'run',
    action: 'upgrade',
    status: 'success',
    label: null,
    exit_code: 0,
    started_at: ago(400),
    finished_at: ago(300),
    duration_ms: 100_000,
    received_at: ago(299),
    failure: null,
    counts: { changed: 2, unchanged: 5, skipped: 1, failed: 0 },
    changes: [{ phase: 'configure', step: '20-haproxy', changes: ['haproxy 2.6 -> 2.8', 'restarted haproxy'] }],
    phases: [
      { phase: 'pre-configure', status: 'success', steps: 2, failed: 0, duration_ms: 1200 },
      { phase: 'configure', status: 'success', steps: 5, failed: 0, duration_ms: 98_000 },
    ],
    ...extra,
  };
}

const serverView: ServerView = {
  generated_at: now,
  server: fleet.servers.find((r) => r.server === 'db01')!,
  runs: [
    run('20261205T115500Z-000003', {
      status: 'failure',
      exit_code: 1,
      label: 'rollout-7 canary',
      failure: { phase: 'configure', step: '30-app', kind: 'exit', exit_code: 3, message: 'told to fail\nsecond line' },
      counts: { changed: 0, unchanged: 3, skipped: 0, failed: 1 },
      changes: [],
      phases: [{ phase: 'configure', status: 'failure', steps: 4, failed: 1, duration_ms: 2500 }],
    }),
    run('20261205T115000Z-000002', { kind: 'checkup', action: 'checkup', counts: null, changes: [], phases: [], duration_ms: 40 }),
    run('20261205T114500Z-000001', {
      label: bad,
      failure: { phase: bad, step: bad, kind: bad, exit_code: null, message: bad },
      changes: [...run('').changes, { phase: bad, step: bad, changes: [bad, bad] }],
      phases: [...run('').phases, { phase: bad, status: bad, steps: 1, failed: 1, duration_ms: 5 }],
    }),
  ],
};

/** The fleet list's rows as rendered: server (unescaped back) and state, in order. */
function fleetRows(html: string): Array<[string, string]> {
  return [...html.matchAll(/<tr class="server [a-z]+" data-server="([^"]*)" data-state="([^"]*)">/g)].map((m) => [unescape(m[1]!), m[2]!]);
}

function unescape(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const countsOf = (html: string) => Object.fromEntries([...html.matchAll(/<li class="count [^"]*" data-state="([^"]*)">.*?<b>(\d+)<\/b>/gs)].map((m) => [m[1]!, Number(m[2])]));

/** Nothing from the data became markup: no script, image, javascript: link or event handler attribute. */
function assertInert(html: string): void {
  assert.doesNotMatch(html, /<script|<img|<iframe|<a href="?javascript:/i);
  // Attribute values (always double-quoted, quotes inside escaped) may hold the text; names may not.
  assert.doesNotMatch(html.replace(/="[^"]*"/g, '=""'), /<[^>]*\son[a-z]+=/i, 'no event handler attribute');
}

describe('the receiver pages, rendered', () => {
  it('escapeHtml: markup characters and quotes become character references, nothing else changes', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&\`</a>`), '&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;&#96;&#60;/a&#62;');
    assert.equal(escapeHtml('web01 é ✓'), 'web01 é ✓');
    assert.equal(escapeHtml(null), '');
    assert.equal(escapeHtml(42), '42');
  });

  it('the fleet page: the counts at the top, every server once, by last report oldest first by default', () => {
    const html = renderFleetPage(fleet);
    assert.deepEqual(countsOf(html), { unresponsive: 1, failed: 3, rebooting: 1, disabled: 1, drifted: 1, changed: 1, unchanged: 1, total: 9 });
    const rows = fleetRows(html);
    assert.deepEqual(rows.map((r) => r[0]), ['cache01', 'db01', 'web01', 'lb02', 'web02', 'app01', 'db02', 'lb01', bad]);
    assert.match(html, /<a href="\/servers\/web01">web01<\/a>/);
    assert.match(html, /2 h ago<\/span><br><small><time datetime="2026-12-05T10:00:00.000Z">2026-12-05 10:00:00 UTC<\/time>/, 'the age and the UTC time of a report');
    assert.match(html, /maintenance window<br><small>by alice/);
    assert.match(html, /rollout-7 batch-1/);
    assert.match(html, /unresponsive after 1 h without a callback/);
    assert.match(html, /<th style="width:13%" data-sort="last_report" aria-sort="ascending"><a href="\?sort=last_report&#38;order=desc">Last report<\/a> <span class="arrow">▲/, 'the current sort links to the other order');
  });

  it('the fleet page sorts by the query: last report newest first, by name, by failures; filters by state', () => {
    const names = (q: string) => fleetRows(renderFleetPage(fleet, parseFleetQuery(new URLSearchParams(q)))).map((r) => r[0]);
    assert.deepEqual(names('sort=last_report&order=desc'), [bad, 'lb01', 'db02', 'app01', 'web02', 'lb02', 'web01', 'db01', 'cache01']);
    assert.deepEqual(names('sort=server'), [bad, 'app01', 'cache01', 'db01', 'db02', 'lb01', 'lb02', 'web01', 'web02']);
    assert.deepEqual(names('sort=failures&order=desc').slice(0, 3), [bad, 'db01', 'db02']);
    assert.deepEqual(names('sort=last_success').slice(0, 1), ['db02'], 'never succeeded sorts as the oldest');
    assert.deepEqual(names('sort=state').slice(0, 2), ['cache01', bad]);
    assert.deepEqual(names('state=failed'), ['db01', 'db02', bad].sort((a, b) => fleet.servers.findIndex((r) => r.server === a) - fleet.servers.findIndex((r) => r.server === b)));
    assert.deepEqual(parseFleetQuery(new URLSearchParams(`sort=${encodeURIComponent(bad)}&order=x&state=nope`)), { sort: 'last_report', order: 'asc', state: null });
  });

  it('hostile strings in every field of the fleet page come out escaped and inert', () => {
    const html = renderFleetPage(fleet);
    assertInert(html);
    assert.ok(html.includes(`<a href="/servers/${escapeHtml(encodeURIComponent(bad))}">${escapeHtml(bad)}</a>`));
    assert.equal(html.split(escapeHtml(bad)).length - 1 >= 6, true, 'name, label, mode, products, run, disabled: all shown, escaped');
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'/);
  });

  it('the server page: its row, its runs newest first with failure, counts, changes and phase timings; hostile strings inert', () => {
    const html = renderServerPage(serverView, { runs: 3 });
    assertInert(html);
    assert.match(html, /<h1 id="server">db01 <span class="badge bad">failed<\/span><\/h1>/);
    assert.deepEqual([...html.matchAll(/<tr class="run" data-run="([^"]*)" data-status="([^"]*)">/g)].map((m) => [unescape(m[1]!), m[2]]), [
      ['20261205T115500Z-000003', 'failure'],
      ['20261205T115000Z-000002', 'success'],
      ['20261205T114500Z-000001', 'success'],
    ]);
    assert.match(html, /<th>Failed in<\/th><td><pre>configure \/ 30-app<\/pre><\/td><\/tr>\n<tr><th>Kind<\/th><td>exit, exit 3<\/td><\/tr>\n<tr><th>Message<\/th><td><pre class="message">told to fail\nsecond line<\/pre>/);
    assert.match(html, /Steps: 2 changed, 5 unchanged, 1 skipped, 0 failed/);
    assert.match(html, /<pre>configure \/ 20-haproxy<\/pre><ul class="changes"><li><pre>haproxy 2.6 -&#62; 2.8<\/pre><\/li><li><pre>restarted haproxy<\/pre>/);
    assert.match(html, /<tr class="phase" data-phase="configure"><td>configure<\/td>.*?<td>98.0 s<\/td><td style="width:40%"><div class="bar" style="width:100.0%">/);
    assert.match(html, /<td>1.200 s<\/td><td style="width:40%"><div class="bar" style="width:1.2%">/);
    assert.match(html, /started <time datetime="2026-12-05T11:53:20.000Z">.*finished <time datetime="2026-12-05T11:55:00.000Z">/);
    assert.match(html, /<a href="\?runs=6">older runs<\/a>/);
    assert.match(html, /<h3>checkup <span class="badge good">success<\/span> <small>20261205T115000Z-000002 · exit 0<\/small><\/h3>/);
    assert.match(html, /<h3>run upgrade <span class="badge bad">failure<\/span> <small>20261205T115500Z-000003 · rollout-7 canary · exit 1<\/small><\/h3>/);
    assert.ok(html.includes(`<pre class="message">${escapeHtml(bad)}</pre>`));
  });
});

/** Chromium, headless, on a URL: the DOM as the browser built it (and, in the same run, a screenshot). */
function chromium(url: string, dir: string, screenshot: string): string {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', `--user-data-dir=${mkdtempSync(join(dir, 'chromium-'))}`, '--dump-dom'];
  args.push(`--screenshot=${screenshot}`, '--window-size=1280,1400', '--hide-scrollbars');
  const r = spawnSync('chromium', [...args, url], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, HOME: dir } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Rows of the fleet table as Chromium serialised them (attributes come back with &quot; and &lt;). */
function domRows(dom: string): Array<[string, string, string]> {
  return [...dom.matchAll(/<tr class="server [a-z]+" data-server="([^"]*)" data-state="([^"]*)">(.*?)<\/tr>/gs)].map((m) => [unescape(m[1]!), m[2]!, m[3]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')]);
}

describe('the receiver pages in headless Chromium', { skip: noBrowser || false, concurrency: false }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bootstrap-rcv-pages-'));
    mkdirSync(join(root, 'dist'), { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the fleet page: counts and rows from the DOM, the hostile row as text, title untouched; a screenshot', () => {
    const file = join(dir, 'fleet.html');
    writeFileSync(file, renderFleetPage(fleet, { sort: 'last_report', order: 'desc' }));
    const shot = join(root, 'dist', 'receiver-fleet.png');
    rmSync(shot, { force: true });
    const dom = chromium(`file://${file}`, dir, shot);
    assert.ok(statSync(shot).size > 10_000, 'a screenshot of the page');
    assert.match(dom, /<title>Fleet: 9 servers, 3 failed, 1 unresponsive<\/title>/, 'no injected script changed the title');
    assert.deepEqual(countsOf(dom), { unresponsive: 1, failed: 3, rebooting: 1, disabled: 1, drifted: 1, changed: 1, unchanged: 1, total: 9 });
    const rows = domRows(dom);
    assert.deepEqual(rows.map((r) => [r[0], r[1]]), [[bad, 'failed'], ['lb01', 'rebooting'], ['db02', 'failed'], ['app01', 'drifted'], ['web02', 'changed'], ['lb02', 'disabled'], ['web01', 'unchanged'], ['db01', 'failed'], ['cache01', 'unresponsive']]);
    assert.match(rows[5]![2], /maintenance window by alice/);
    assert.match(rows[4]![2], /^ web02 changed 60 s ago 2026-12-05 11:59:00 UTC run: success · rollout-7 batch-1 refresh success/);
    assertInert(dom);
    assert.ok(dom.includes('&lt;script&gt;document.title=\'pwned\'&lt;/script&gt;'), 'the script is text on the page');
    assert.equal([...dom.matchAll(/<table/g)].length, 1, 'the hostile </table> closed nothing');
  });

  it('the server page: runs, failure and changes from the DOM, the hostile run as text; a screenshot', () => {
    const file = join(dir, 'server.html');
    writeFileSync(file, renderServerPage(serverView, { runs: 10 }));
    const shot = join(root, 'dist', 'receiver-server.png');
    rmSync(shot, { force: true });
    const dom = chromium(`file://${file}`, dir, shot);
    assert.ok(statSync(shot).size > 10_000, 'a screenshot of the page');
    assert.match(dom, /<title>db01: failed<\/title>/);
    assert.deepEqual([...dom.matchAll(/<section class="run ([a-z]+)" id="run-([^"]*)"/g)].map((m) => [m[1], unescape(m[2]!)]), [
      ['bad', '20261205T115500Z-000003'],
      ['good', '20261205T115000Z-000002'],
      ['good', '20261205T114500Z-000001'],
    ]);
    assert.match(dom, /<pre class="message">told to fail\nsecond line<\/pre>/);
    assert.match(dom, /<li><pre>haproxy 2.6 -&gt; 2.8<\/pre><\/li>/);
    assertInert(dom);
    assert.equal([...dom.matchAll(/<section class="run/g)].length, 3, 'the hostile </table> closed no section');
  });
});

// ---- End to end: the real receiver, signed callbacks, its / page in Chromium ----

const notBuilt = !existsSync(join(root, 'dist/receiver/src/main.js')) && 'the receiver is not built (npm run build)';

/**
 * One request on its own connection (fetch's pool may reuse a keep-alive socket the receiver is
 * closing as idle after Chromium's seconds: "other side closed").
 */
function http(url: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', headers, agent: false, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

let seq = 0;
/** A callback body that fits schema/callback.schema.json; finished now, a fresh run id. */
function callback(server: string, kind: 'run' | 'checkup' | 'verify', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const at = new Date();
  const id = `${at.toISOString().replace(/[-:]|\.\d+/g, '').slice(0, 15)}Z-${(0xe2e000 + ++seq).toString(16)}`;
  const action = kind === 'run' ? 'refresh' : kind;
  return {
    schema: 'bootstrap.callback', schema_version: 1, kind, id, server, action, status: 'success', exit_code: 0,
    started_at: new Date(at.getTime() - 1500).toISOString(), finished_at: at.toISOString(), duration_ms: 1500, mode: 'active', products: { haproxy: '2.8' }, label: null,
    failure: null, phases: kind === 'checkup' ? [] : [{ phase: 'configure', status: 'success', steps: 2, failed: 0, duration_ms: 1400 }],
    heartbeat: null, ...(kind === 'run' ? { counts: { changed: 0, unchanged: 2, skipped: 0, failed: 0 }, changes: [] } : {}), ...extra,
  };
}

const failed = (message: string, label: string | null = null) => ({
  status: 'failure', exit_code: 1, label, counts: { changed: 0, unchanged: 1, skipped: 0, failed: 1 },
  failure: { phase: 'configure', step: '20-app', kind: 'exit', exit_code: 3, message },
  phases: [{ phase: 'configure', status: 'failure', steps: 2, failed: 1, duration_ms: 1400 }],
});

describe('the receiver pages end to end', { skip: noBrowser || notBuilt || false }, () => {
  it('signed callbacks into the real receiver (SQLite): its / page in Chromium shows the counts and rows; each server page its runs, escaped', async () => {
    const key = 'pages-e2e-key';
    const { dir, secretFile, cleanup } = secretDir(key);
    const receiver = await startReceiver({ db: `sqlite:${join(dir, 'receiver.db')}`, secretFile }).catch((e) => (cleanup(), Promise.reject(e)));
    try {
      const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
      const post = async (b: Record<string, unknown>) => {
        assert.deepEqual(validate(schema, b), [], 'the body fits the schema');
        const body = JSON.stringify(b);
        const signature = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
        const res = await http(`${receiver.url}/callback`, body, { 'content-type': 'application/json', 'x-bootstrap-delivery': String(b['id']), 'x-bootstrap-signature-256': signature });
        assert.equal(res.status, 200, `${res.status} ${res.text}\n${receiver.output()}`);
        return JSON.parse(res.text) as { stored: boolean; duplicate: boolean };
      };
      // Posted one after the other: the default order (oldest report first) is this one.
      await post(callback(bad, 'run', failed(bad, bad)));
      await post(callback('web01', 'run', { counts: { changed: 2, unchanged: 0, skipped: 0, failed: 0 }, changes: [{ phase: 'configure', step: '10-haproxy', changes: ['haproxy 2.6 -> 2.8'] }] }));
      await post(callback('web02', 'run', failed('exit 3: told to fail', 'rollout-9 canary')));
      await post(callback('web03', 'run'));
      await post(callback('web03', 'checkup', { heartbeat: { healthy: true, started_at: new Date().toISOString(), finished_at: new Date().toISOString(), results: [] }, disabled: { since: new Date().toISOString(), by: 'alice', reason: 'disk swap' } }));
      await post(callback('web04', 'run'));
      await post(callback('web04', 'verify', { status: 'drift', exit_code: 1, verify: { status: 'drift', ok: 0, drift: 1, no_check: 0, skipped: 0, error: 0, steps: [{ phase: 'configure', step: '10-haproxy', result: 'drift', message: 'differs' }] } }));
      await post(callback('web05', 'run', { action: 'provision', status: 'rebooting', exit_code: 0 }));
      const last = callback('web06', 'run');
      assert.deepEqual(await post(last), { stored: true, duplicate: false, id: last['id'] });
      assert.deepEqual(await post(last), { stored: false, duplicate: true, id: last['id'] }, 'a redelivery: acknowledged, stored once');

      const shot = join(root, 'dist', 'receiver-fleet-e2e.png');
      rmSync(shot, { force: true });
      const dom = chromium(`${receiver.url}/`, dir, shot);
      assert.ok(statSync(shot).size > 10_000, 'a screenshot of the served page');
      assert.deepEqual(countsOf(dom), { unresponsive: 0, failed: 2, rebooting: 1, disabled: 1, drifted: 1, changed: 1, unchanged: 1, total: 7 });
      const rows = domRows(dom);
      assert.deepEqual(rows.map((r) => [r[0], r[1]]), [[bad, 'failed'], ['web01', 'changed'], ['web02', 'failed'], ['web03', 'disabled'], ['web04', 'drifted'], ['web05', 'rebooting'], ['web06', 'unchanged']]);
      assert.match(rows[2]![2], /run: failure · rollout-9 canary refresh failure/);
      assert.match(rows[3]![2], /disk swap by alice/);
      assertInert(dom);
      assert.match(dom, /<title>Fleet: 7 servers, 2 failed, 0 unresponsive<\/title>/);

      // Each server's page, as served (the hostile one through its encoded link).
      const page = async (name: string) => {
        const res = await http(`${receiver.url}/servers/${encodeURIComponent(name)}`);
        assert.equal(res.status, 200, receiver.output());
        return res.text;
      };
      const web02 = await page('web02');
      assert.match(web02, /<h1 id="server">web02 <span class="badge bad">failed<\/span><\/h1>/);
      assert.match(web02, /<pre class="message">exit 3: told to fail<\/pre>/);
      const hostile = await page(bad);
      assertInert(hostile);
      assert.ok(hostile.includes(`<pre class="message">${escapeHtml(bad)}</pre>`));

      // The served list follows the query (newest report first; only the failed ones), pages
      // carry their policy as a header too, and a malformed %-escape is a 404, not a 500.
      const names = (html: string) => [...html.matchAll(/<a href="\/servers\/([^"]+)">/g)].map((m) => m[1]!);
      const newest = await http(`${receiver.url}/?sort=last_report&order=desc`);
      assert.deepEqual(names(newest.text).slice(0, 2), ['web06', 'web05']);
      const onlyFailed = await http(`${receiver.url}/?state=failed&sort=server&order=asc`);
      assert.deepEqual(names(onlyFailed.text).filter((n) => n.startsWith('web')), ['web02']);
      assert.equal(names(onlyFailed.text).length, 2);
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => request(`${receiver.url}/`, { agent: false }, (res) => (res.resume(), resolve(res.headers))).on('error', reject).end());
      assert.match(String(headers['content-security-policy']), /default-src 'none'/);
      assert.equal((await http(`${receiver.url}/servers/%E0%A4%A`)).status, 404);
      assert.equal((await http(`${receiver.url}/api/servers/%ZZ`)).status, 404);
    } finally {
      await receiver.kill();
      cleanup();
    }
  });
});
