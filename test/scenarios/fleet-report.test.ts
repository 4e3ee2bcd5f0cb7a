// fleet/rollout.yml's report for people: the JSON document (before -> after, step counts, times per
// host and batch, parameters, controller) and the HTML page beside it, loaded in headless Chromium
// (Debian's `chromium`): its summary, rows and failures read from the DOM the browser built, and a
// screenshot kept under dist/ (a CI artifact). Then the page's filter alone, fed hostile strings.
// One rollout over 3 test servers (helpers/fleet), Debian 12's ansible-core only.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir, type Fleet } from '../helpers/fleet.js';
import { root } from '../helpers/cli.js';
import { iniWith } from '../helpers/phases.js';

const unavailable = fleetUnavailable();
const noBrowser = spawnSync('sh', ['-c', 'command -v chromium']).status !== 0 && 'the report tests need chromium (.ci/run installs it)';
if (unavailable || noBrowser) console.log(`fleet report tests skipped: ${unavailable || noBrowser}`);

/** One step: applies the version; fails where the host has a FAIL file. */
function phases(dir: string): void {
  mkdirSync(join(dir, 'configure.d'), { recursive: true });
  writeFileSync(join(dir, 'configure.d', '10-app'), '#!/bin/sh\n[ -f /etc/bootstrap/FAIL ] && { echo "told to fail"; exit 3; }\necho "haproxy $BOOTSTRAP_HAPROXY_VERSION" >> "$BOOTSTRAP_CHANGES"\n', { mode: 0o755 });
}

/** Chromium, headless, on a file: the DOM as the browser built it (and, in the same run, a screenshot). */
function chromium(file: string, dir: string, screenshot?: string): string {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions', `--user-data-dir=${mkdtempSync(join(dir, 'chromium-'))}`, '--dump-dom'];
  if (screenshot) args.push(`--screenshot=${screenshot}`, '--window-size=1400,1800', '--hide-scrollbars');
  const r = spawnSync('chromium', [...args, `file://${file}`], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, HOME: dir } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** The hosts table's rows from the DOM: host → status, and each row's text. */
function rows(dom: string): Record<string, { status: string; text: string }> {
  const out: Record<string, { status: string; text: string }> = {};
  for (const m of dom.matchAll(/<tr class="host" data-host="([^"]*)" data-status="([^"]*)">(.*?)<\/tr>/gs)) {
    out[m[1]!] = { status: m[2]!, text: m[3]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ') };
  }
  return out;
}

const counts = (dom: string) => Object.fromEntries([...dom.matchAll(/<li class="count" data-status="([^"]*)">.*?<b>(\d+)<\/b>/gs)].map((m) => [m[1]!, Number(m[2])]));
const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('the rollout report', { skip: unavailable || noBrowser || false, concurrency: false }, () => {
  let dir: string;
  let fleet: Fleet;
  before(() => {
    dir = newFleetDir();
    const bin = installAgent(dir);
    mkdirSync(join(dir, 'fleet'));
    fleet = makeFleet({ hosts: 3, ini: () => iniWith({ script_timeout: 30 }), phases, bin, dir: join(dir, 'fleet') });
    for (const h of fleet.hosts) assert.equal(fleet.runIn(h, [bin, 'server.provision', '-q']).code, 0);
  });
  after(() => {
    fleet?.teardown();
    if (dir) removeFleetDir(dir);
  });

  it('one failing host: the JSON has before -> after, step counts, times, parameters, the controller; Chromium shows the summary, rows and the failure', () => {
    writeFileSync(join(fleet.hosts[1]!.etc, 'FAIL'), '');
    const reportDir = mkdtempSync(join(dir, 'report-'));
    const r = fleet.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'rep1', batches: [1, 1], report_dir: reportDir });
    assert.notEqual(r.code, 0, r.output);
    const report = JSON.parse(readFileSync(join(reportDir, 'rep1.json'), 'utf8'));
    const [h1, h2, h3] = report.hosts;
    assert.deepEqual(report.hosts.map((h: any) => [h.host, h.batch, h.status]), [['host01', 'canary', 'success'], ['host02', 'batch-1', 'failed'], ['host03', 'batch-2', 'not run']]);
    assert.deepEqual(report.counts, { success: 1, failed: 1, 'not run': 1 });
    assert.equal(report.stopped, true);
    assert.match(report.stop_reason, /^failure budget: 1 of 3 hosts failed \(host02\)/);
    assert.deepEqual(report.budget, { max_fail_percentage: 0, exceeded: true, hosts: 3, failed: 1 });
    // before -> after: the upgraded host, the failed one (still the version in force), the one not run.
    assert.deepEqual([h1.before.versions.haproxy, h1.after.versions.haproxy], ['2.6', '2.8']);
    assert.deepEqual([h1.before.mode, h1.after.mode], ['standby', 'standby']);
    assert.deepEqual([h2.before.versions.haproxy, h2.after.versions.haproxy], ['2.6', '2.6']);
    assert.deepEqual([h3.before.versions.haproxy, h3.after], ['2.6', null]);
    assert.deepEqual(h1.steps, { changed: 1, unchanged: 0, skipped: 0, failed: 0 });
    assert.equal(h2.steps.failed, 1);
    assert.deepEqual(h2.failure, { phase: 'configure', step: '10-app', message: 'exit 3' });
    // Times: each run's, each batch's (in order, one after another), the rollout's around them.
    const at = (t: string) => Date.parse(t);
    for (const h of [h1, h2]) assert.ok(iso.test(h.started_at) && iso.test(h.finished_at) && at(h.started_at) <= at(h.finished_at), JSON.stringify(h));
    assert.equal(h3.started_at, null);
    assert.deepEqual(report.batches.map((b: any) => [b.name, b.hosts]), [['canary', ['host01']], ['batch-1', ['host02']], ['batch-2', ['host03']]]);
    const times = [report.started_at, ...report.batches.flatMap((b: any) => [b.started_at, b.finished_at]), report.finished_at];
    for (const t of times) assert.match(t, iso);
    assert.deepEqual([...times].sort((a, b) => at(a) - at(b)), times, 'rollout start, each batch start and end, rollout end: in order');
    assert.ok(at(report.batches[0].started_at) <= at(h1.started_at) && at(h1.finished_at) <= at(report.batches[0].finished_at), 'the canary ran within its batch');
    assert.equal(report.parameters.command, 'upgrade');
    assert.equal(report.parameters.version, '2.8');
    assert.deepEqual(report.parameters.batches, [1, 1]);
    assert.equal(report.parameters.max_fail_percentage, 0);
    assert.equal(report.parameters.rollout_id, 'rep1');
    assert.equal(report.controller.user, userInfo().username);
    assert.equal(report.controller.sudo_user, process.env['SUDO_USER'] || null);
    const ansible = /core ([\d.]+)/.exec(execFileSync('ansible-playbook', ['--version'], { encoding: 'utf8' }))![1];
    assert.equal(report.controller.ansible_core, ansible);

    // The page: one file, nothing from elsewhere; as Chromium builds it.
    const file = join(reportDir, 'rep1.html');
    const page = readFileSync(file, 'utf8');
    assert.doesNotMatch(page, /<script|\b(src|href)=|url\(|@import/i, 'no script, no external asset');
    // Kept for people (CI keeps dist/ as an artifact).
    const shot = join(root, 'dist', 'fleet-report.png');
    rmSync(shot, { force: true });
    const dom = chromium(file, dir, shot);
    assert.ok(statSync(shot).size > 10_000, 'a screenshot of the page');
    assert.match(dom, /<div class="banner bad" id="verdict">Stopped: failure budget: 1 of 3 hosts failed \(host02\)/);
    assert.match(dom, /<th>Failure budget<\/th><td>max_fail_percentage 0% of 3 hosts; 1 failed; exceeded: yes<\/td>/);
    assert.deepEqual(counts(dom), { success: 1, failed: 1, 'not run': 1 });
    const table = rows(dom);
    assert.deepEqual(Object.fromEntries(Object.entries(table).map(([h, v]) => [h, v.status])), { host01: 'success', host02: 'failed', host03: 'not run' });
    assert.match(table['host01']!.text, /haproxy 2\.6 → 2\.8/);
    assert.match(table['host01']!.text, / 1 \/ 0 \/ 0 \/ 0 /);
    assert.match(table['host02']!.text, /haproxy 2\.6 /);
    const failures = /<section id="failures">(.*?)<\/section>/s.exec(dom)![1]!;
    assert.match(failures, /data-host="host02"/);
    assert.match(failures, /<th>phase<\/th><td><pre>configure<\/pre>.*<th>step<\/th><td><pre>10-app<\/pre>.*<th>message<\/th><td><pre>exit 3<\/pre>/s);
    assert.doesNotMatch(failures, /host01|host03/);
    // The timeline: a bar per host, the canary's before the failed host's, the host not run a mark.
    const bars = Object.fromEntries([...dom.matchAll(/<div class="trow" data-host="([^"]*)">.*?<div class="bar( norun)?" style="left: ?([\d.]+)%; ?width: ?([\d.]+)%/gs)].map((m) => [m[1]!, { norun: !!m[2], left: Number(m[3]), width: Number(m[4]) }]));
    assert.deepEqual(Object.keys(bars), ['host01', 'host02', 'host03']);
    assert.ok(bars['host01']!.left + bars['host01']!.width <= bars['host02']!.left + 0.001 && bars['host01']!.width > 0, JSON.stringify(bars));
    assert.equal(bars['host03']!.norun, true);
  });
});

// The plugin alone (any python3; without Ansible its strings are not marked): what a server printed
// is escaped, Jinja's markers included, and the browser runs none of it.
describe('the report page with hostile strings', { skip: noBrowser || false }, () => {
  it('<script>, an onerror image, quotes and Jinja markers come out escaped and inert', () => {
    const dir = mkdtempSync(join(newFleetDir(), 'page-'));
    try {
      const bad = `<script>document.title='pwned'</script><img src=x onerror="document.title='img'">"q' {{ lookup('pipe','touch ${dir}/ran') }} {% set x = 1 %} {# c #} %s`;
      const row = { host: 'web01', batch: 'canary', ran: true, status: 'failed', exit_code: 1, duration_s: 1, run_id: bad, failed_at: bad, started_at: '2026-01-01T00:00:01.000Z', finished_at: '2026-01-01T00:00:02.000Z',
        steps: { changed: 0, unchanged: 0, skipped: 0, failed: 1 }, failure: { phase: 'configure', step: bad, message: bad }, after: { mode: bad, versions: { haproxy: bad }, settings_changed: {} } };
      const input = { rows: [row, { host: bad, batch: 'batch-1', ran: true, status: 'rebooting' }, { host: 'web03', batch: 'batch-1', ran: false, status: `odd ${bad}` },
        { host: 'web04', batch: 'canary', ran: true, status: 'backed out', started_at: '2026-01-01T00:00:01.000Z', finished_at: '2026-01-01T00:00:01.500Z', backout_started_at: '2026-01-01T00:00:03.500Z', backout_finished_at: '2026-01-01T00:00:03.900Z' }],
        pre: { web01: { ok: true, mode: 'standby', versions: { haproxy: '2.6' }, settings: {}, secrets: [] } },
        batches: { canary: { started_at: '2026-01-01T00:00:00.500000Z', finished_at: '2026-01-01T00:00:02.500000Z' }, 'batch-1': { started_at: '2026-01-01T00:00:03.000000Z', finished_at: null } },
        params: { command: 'set', settings: { 'haproxy.maxconn': 1, 'haproxy.stats_password': 'hunter2' }, backout: 'none' },
        summary: { rollout: 'r', command: 'set', stopped: true, stop_reason: bad, budget_exceeded: false, started_at: '2026-01-01T00:00:00Z', finished_at: '2026-01-01T00:00:04Z' } };
      input.pre.web01 = { ...input.pre.web01, secrets: ['haproxy.stats_password'] } as any;
      const py = `import json,sys\nsys.path.insert(0, sys.argv[1])\nimport bootstrap_report as r\ni=json.load(sys.stdin)\nrep=r.bs_report(i['rows'],i['pre'],i['batches'],i['params'],{'user':'u','host':'h','ansible_core':'x'},i['summary'])\nh=r.bs_report_html(rep)\nopen(sys.argv[2],'w').write(h)\njson.dump({'report':rep,'page':type(h).__name__,'message':type(rep['hosts'][0]['failure']['message']).__name__,'ansible':r.wrap_var.__module__.startswith('ansible')},sys.stdout)\n`;
      const file = join(dir, 'page.html');
      // Debian's Python (Ansible's): a python3 earlier on PATH (pyenv) may not have Ansible.
      const p = spawnSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', py, join(root, 'fleet/filter_plugins'), file], { input: JSON.stringify(input), encoding: 'utf8', timeout: 30_000 });
      assert.equal(p.status, 0, p.stderr);
      const { report, page: pageType, message, ansible } = JSON.parse(p.stdout);
      // Under Ansible every string the filters return is marked unsafe: stored as a fact, never templated again.
      if (ansible || !unavailable) assert.deepEqual([pageType, message], ['AnsibleUnsafeText', 'AnsibleUnsafeText']);
      assert.equal(report.budget.failed, 2, 'the failed host and the one whose status the report does not know');
      assert.deepEqual(report.parameters.settings, { 'haproxy.maxconn': 1, 'haproxy.stats_password': '********' }, "a secret's value is never in the report");
      assert.deepEqual(report.counts, { rebooting: 1, failed: 1, 'backed out': 1, [`odd ${bad}`]: 1 });
      const page = readFileSync(file, 'utf8');
      assert.doesNotMatch(page, /<script|<img|\{\{|\{%|\{#|hunter2/, 'no markup and no Jinja marker from the data, no secret');
      assert.match(page, /&lt;script&gt;document\.title=&#x27;pwned&#x27;&lt;\/script&gt;&lt;img src=x onerror=&quot;/);
      assert.match(page, /&#123;&#123; lookup\(&#x27;pipe&#x27;/);
      const dom = chromium(file, dir);
      assert.match(dom, /<title>Rollout r<\/title>/, 'no script ran (it would set the title)');
      assert.doesNotMatch(dom, /<script|<img/);
      // The browser shows the text as printed: the markers as they were, the markup as text.
      assert.ok(dom.includes(`{{ lookup('pipe','touch ${dir}/ran') }} {% set x = 1 %} {# c #} %s`));
      assert.ok(dom.includes('&lt;script&gt;document.title=\'pwned\'&lt;/script&gt;'));
      assert.equal(existsSync(join(dir, 'ran')), false);
      assert.deepEqual(Object.values(rows(dom)).map((r) => r.status), ['failed', 'rebooting', `odd ${bad}`.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;'), 'backed out']);
      // A fleet backout is a block of the timeline after the batches, with the hosts put back.
      assert.match(dom, /<div class="batch" data-batch="backout"><div class="bhead">backout · 00:00:03 – 00:00:03 \(0\.4 s\)<\/div><div class="trow" data-host="web04">/);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });
});

// The action that writes the reports (fleet/action_plugins/bootstrap_write.py), in a playbook on
// localhost (no fleet): as ansible.builtin.copy wrote them before it, without a module.
const noAnsible = spawnSync('sh', ['-c', 'command -v ansible-playbook']).status !== 0 && 'ansible-playbook is missing (.ci/run installs it)';
describe('the report writer (bootstrap_write)', { skip: noAnsible || false }, () => {
  /** One playbook run on localhost with the fleet's actions; HOME is `home` (for `~`). */
  function play(home: string, tasks: string, extra: string[] = []) {
    const file = join(home, 'play.yml');
    writeFileSync(file, `- hosts: localhost\n  gather_facts: false\n  tasks:\n${tasks}`);
    const r = spawnSync('ansible-playbook', ['-i', 'localhost,', '-c', 'local', file, ...extra], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, HOME: home, ANSIBLE_ACTION_PLUGINS: join(root, 'fleet/action_plugins'), ANSIBLE_LOCAL_TEMP: join(home, 'tmp'), ANSIBLE_NOCOLOR: '1' },
    });
    return { code: r.status, out: `${r.stdout}${r.stderr}`, changed: Number(/localhost\s+: ok=\d+\s+changed=(\d+)/.exec(r.stdout)?.[1] ?? -1) };
  }
  const write = (dir: string, name: string) => `    - bootstrap_write:\n        dir: "${dir}"\n        name: ${name}\n        data: {b: 1, a: [x, "é"]}\n`;
  const expected = '{\n    "a": [\n        "x",\n        "\\u00e9"\n    ],\n    "b": 1\n}\n';

  it('writes to_nice_json\'s text, 0644, under ~/; unchanged is not changed; a wrong mode is put right; --check writes nothing; no dir fails', () => {
    const home = mkdtempSync(join(newFleetDir(), 'writer-'));
    try {
      mkdirSync(join(home, 'out'));
      const file = join(home, 'out', 'r1.json');
      const first = play(home, write('~/out', 'r1'));
      assert.equal(first.code, 0, first.out);
      assert.equal(readFileSync(file, 'utf8'), expected);
      assert.equal(statSync(file).mode & 0o7777, 0o644);
      assert.equal(first.changed, 1, first.out);
      const again = play(home, write('~/out', 'r1'));
      assert.equal(again.changed, 0, again.out);
      execFileSync('chmod', ['0600', file]);
      const moded = play(home, write('~/out', 'r1'));
      assert.equal(moded.changed, 1, moded.out);
      assert.equal(statSync(file).mode & 0o7777, 0o644);
      const checked = play(home, write('~/out', 'r2'), ['--check']);
      assert.equal(checked.code, 0, checked.out);
      assert.equal(existsSync(join(home, 'out', 'r2.json')), false, 'nothing written under --check');
      const missing = play(home, write('~/nowhere', 'r3'));
      assert.notEqual(missing.code, 0);
      assert.match(missing.out, /bootstrap_write: .*\/nowhere is not a directory \(report_dir\)/);
      const leftovers = execFileSync('ls', ['-A', join(home, 'out')], { encoding: 'utf8' }).trim().split('\n');
      assert.deepEqual(leftovers, ['r1.json'], 'no temporary file left');
    } finally {
      rmSync(join(home, '..'), { recursive: true, force: true });
    }
  });
});
