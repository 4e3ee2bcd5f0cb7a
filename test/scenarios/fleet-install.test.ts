// fleet/install.yml over real test servers (helpers/fleet, with /usr of each server an overlay of
// its own, so dpkg inside a server installs into the test's temp dir): a fresh install, its ini,
// its phases tree and the tree's version, the units enabled; an upgrade that waits for a run in
// progress; a package whose `bootstrap --version` fails, put back on the canary, and the install
// stopped there. One 3-host fleet, ansible-core 2.14 (this machine's).
//
// The package is the arch:all bootstrap-agent: its `nodejs (>= 20.19)` is this machine's (Debian
// 12 with NodeSource's nodejs 20), which the servers see through their /usr overlay. The
// bundled-runtime variant installs as well, but writes a 110 MB Node per server per install (17 s
// against 9 s on the CI machine); the booted Debian 12 machines install that one.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { root } from '../helpers/cli.js';
import { repackDeb } from '../helpers/debs.js';
import { fleetUnavailable, makeFleet, newFleetDir, removeFleetDir, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { iniWith } from '../helpers/phases.js';

const unavailable = fleetUnavailable();
if (unavailable) console.log(`fleet install tests skipped: ${unavailable}`);

const upstream: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

const statuses = (report: any) => Object.fromEntries(report.hosts.map((r: any) => [r.host, r.status]));

describe('fleet/install.yml: the agent package, its ini and phases tree, on a fleet', { skip: unavailable || undefined, timeout: 600_000 }, () => {
  let dir: string;
  let f: Fleet;
  const debs: Record<string, string> = {};
  const usrBefore = existsSync('/usr/lib/bootstrap-agent');
  let config: string;
  let commit: string;
  // One batch of 3 (where the canary does not matter: each batch costs an install's time).
  const run = (vars: Record<string, unknown>) => f.rollout({ config_dir: config, canary: 3, settle: 1, busy_wait: 120, ...vars }, 300_000, {}, 'install.yml');
  const agent = (h: FleetHost, ...args: string[]) => f.runIn(h, ['/usr/bin/bootstrap', ...args]);

  before(async () => {
    dir = newFleetDir();
    const out = join(dir, 'debs');
    execFileSync(join(root, 'scripts/build-deb.sh'), ['--no-build', '--only', 'all', out], { env: { ...process.env, BOOTSTRAP_DEB_COMPRESS: '-Zgzip -z1' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    debs['v1'] = join(out, `bootstrap-agent_${upstream}-1_all.deb`);
    [debs['v2'], debs['broken']] = await Promise.all([repackDeb(debs['v1']!, join(out, 'v2.deb'), '9.0.0'), repackDeb(debs['v1']!, join(out, 'broken.deb'), '9.0.1', true)]);
    // The controller's config dir: an ini and a phases tree (a git checkout: its commit is its version).
    config = join(dir, 'config');
    mkdirSync(join(config, 'phases/configure.d'), { recursive: true });
    writeFileSync(join(config, 'bootstrap.ini'), iniWith({ script_timeout: 180 }));
    // With HOLD on the server, the run lasts until an upgrade has disabled runs (it waits for this
    // run), then 2 s more (at most 120 s): so the upgrade provably starts during the run.
    writeFileSync(
      join(config, 'phases/configure.d/10-app'),
      '#!/bin/sh\nif [ -f /etc/bootstrap/HOLD ]; then n=0; until grep -q "agent upgrade" /var/bootstrap/state.json || [ $n -ge 600 ]; do sleep 0.2; n=$((n + 1)); done; sleep 2; fi\necho "$BOOTSTRAP_ACTION" >> /var/bootstrap/applied.log\n',
      { mode: 0o755 },
    );
    const git = (...a: string[]) => execFileSync('git', ['-C', config, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { encoding: 'utf8' }).trim();
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'tree');
    commit = git('rev-parse', 'HEAD');
    f = makeFleet({ hosts: 3, dir, bin: '/usr/bin/bootstrap', overlayUsr: true, rootShell: '/bin/sh', ini: () => '', phases: () => {} });
    for (const h of f.hosts) {
      rmSync(join(h.etc, 'bootstrap.ini'));
      // man-db's trigger (7 s an install here) off, in the server's /var only: as many images do.
      assert.equal(f.runIn(h, ['rm', '-f', '/var/lib/man-db/auto-update']).code, 0);
    }
  });
  after(() => {
    f?.teardown();
    if (dir) removeFleetDir(dir);
  });

  it('a fresh install: the package, the ini, the tree with its version (server.status shows it), the units enabled; this machine\'s /usr untouched', () => {
    const r = run({ package: debs['v1'] });
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'success', host03: 'success' });
    assert.match(r.output, /HOST \| BATCH \| STATUS \| PACKAGE BEFORE -> AFTER/);
    for (const h of f.hosts) {
      const row = r.report.hosts.find((x: any) => x.host === h.name);
      assert.equal(row.package_after, `bootstrap-agent ${upstream}-1`);
      assert.equal(row.phases_version, commit);
      assert.equal(agent(h, '--version').stdout.trim(), upstream);
      assert.equal(readFileSync(join(h.etc, 'bootstrap.ini'), 'utf8'), readFileSync(join(config, 'bootstrap.ini'), 'utf8'));
      assert.equal(statSync(join(h.etc, 'bootstrap.ini')).mode & 0o777, 0o600);
      assert.ok(statSync(join(h.etc, 'phases/configure.d/10-app')).mode & 0o100, 'the step stays executable');
      assert.equal(readFileSync(join(h.etc, 'phases/VERSION'), 'utf8'), `${commit}\n`);
      const status = agent(h, 'server.status', '--json');
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).phases_version, commit);
      assert.match(agent(h, 'server.status').stdout, new RegExp(`^phases version: +${commit}$`, 'm'));
      // No systemd runs in a test server: `systemctl enable` made the links, as on a booted one.
      const wants = join(dir, h.name, 'overlay/etc/systemd/system');
      for (const [target, unit] of [['timers.target.wants', 'bootstrap-refresh.timer'], ['timers.target.wants', 'bootstrap-heartbeat.timer'], ['multi-user.target.wants', 'bootstrap-resume.service']]) {
        assert.ok(lstatSync(join(wants, target!, unit!)).isSymbolicLink(), `${h.name}: ${unit} enabled`);
        assert.match(readlinkSync(join(wants, target!, unit!)), new RegExp(`^/(usr/)?lib/systemd/system/${unit}$`));
      }
      assert.ok(existsSync(join(dir, h.name, 'overlay/usr/lib/bootstrap-agent/dist/bootstrap.cjs')), 'installed into the server\'s /usr overlay');
    }
    assert.equal(existsSync('/usr/lib/bootstrap-agent'), usrBefore, 'this machine\'s /usr is untouched');
  });

  it('an upgrade waits for the run in progress (it starts only after the run ended, which succeeded), runs are allowed again; an operator\'s disable stays', () => {
    const h = f.hosts[0]!;
    const kept = f.hosts[2]!;
    assert.equal(agent(kept, 'server.disable', '--reason', 'kernel work OPS-1').code, 0);
    writeFileSync(join(h.etc, 'HOLD'), '');
    const slow = f.spawnIn(h, ['/usr/bin/bootstrap', 'server.provision', '-q']);
    try {
      const until = Date.now() + 30_000;
      while (!existsSync(join(h.state, 'run.lock')) && Date.now() < until) spawnSync('sleep', ['0.1']);
      assert.ok(existsSync(join(h.state, 'run.lock')), 'the held run holds the run lock');
      const r = run({ package: debs['v2'] });
      assert.equal(r.code, 0, r.output);
      assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'success', host03: 'success' });
      const last = JSON.parse(readFileSync(join(h.state, 'state.json'), 'utf8')).last_run;
      assert.equal(last.status, 'success', 'the run was not interrupted');
      const row = r.report.hosts.find((x: any) => x.host === h.name);
      assert.ok(Date.parse(row.installed_at) > Date.parse(last.finished_at), `installed at ${row.installed_at}, the run ended at ${last.finished_at}`);
      assert.ok(row.waited_s >= 2, `waited ${row.waited_s} s`);
      assert.equal(readFileSync(join(h.state, 'applied.log'), 'utf8'), 'provision\n', 'the run went through its step');
      for (const x of f.hosts) {
        assert.equal(agent(x, '--version').stdout.trim(), '9.0.0');
        const disabled = JSON.parse(agent(x, 'server.status', '--json').stdout).disabled;
        if (x === kept) assert.equal(disabled?.reason, 'kernel work OPS-1', 'the operator\'s disable stays');
        else assert.equal(disabled, null, `${x.name}: runs allowed again`);
      }
    } finally {
      slow.kill();
      rmSync(join(h.etc, 'HOLD'), { force: true });
    }
  });

  it('a package whose bootstrap --version fails is put back on the canary (the previous one, kept on the server), and the install stops', () => {
    // As a worker killed with -9 would leave it: its disable is lifted by the next install.
    assert.equal(agent(f.hosts[0]!, 'server.disable', '--reason', 'agent upgrade install-x/canary (fleet/install.yml)').code, 0);
    const r = run({ package: debs['broken'], canary: 1, batches: ['100%'] });
    assert.notEqual(r.code, 0);
    assert.deepEqual(statuses(r.report), { host01: 'failed', host02: 'not run', host03: 'not run' });
    const row = r.report.hosts[0];
    assert.equal(row.put_back, true, row.message);
    assert.match(row.message, /9\.0\.1-1: bootstrap --version does not answer 9\.0\.1 .*put back bootstrap-agent 9\.0\.0-1/);
    assert.match(r.report.stop_reason, /failure budget: 1 of 3 hosts failed \(host01\)/);
    for (const h of f.hosts) assert.equal(agent(h, '--version').stdout.trim(), '9.0.0');
    assert.equal(JSON.parse(agent(f.hosts[0]!, 'server.status', '--json').stdout).disabled, null, 'runs allowed again after the failure');
  });
});

// As fleet.test.ts checks rollout.yml: nothing newer ansible-core refuses (a mutating call in a
// template, a template in a conditional).
describe('fleet/install.yml keeps to newer ansible-core', () => {
  const playbook = readFileSync(join(root, 'fleet/install.yml'), 'utf8');

  it('no template calls a mutating method; no conditional holds a template', () => {
    assert.deepEqual(playbook.match(/\.(append|update|extend|insert|pop|setdefault|remove|clear)\(/g), null);
    const conditionals = playbook.split('\n').filter((l) => /^\s*(when|changed_when|failed_when|until):/.test(l));
    assert.ok(conditionals.length >= 5, String(conditionals.length));
    for (const l of conditionals) assert.doesNotMatch(l, /\{\{|\{%/, l);
  });
});
