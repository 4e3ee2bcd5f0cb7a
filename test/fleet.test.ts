// fleet/rollout.yml over real test servers (network namespaces with sshd, see helpers/fleet),
// driven by Debian's ansible: preflight, canary, batches, the fleet-wide budget, fleet backout,
// busy hosts, unreachable hosts, and a second identical rollout.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir, type Fleet, type FleetHost } from './helpers/fleet.js';
import { iniWith } from './helpers/phases.js';

const unavailable = fleetUnavailable();
if (unavailable) console.log(`fleet tests skipped: ${unavailable}`);

const ini = () => iniWith({ script_timeout: 30 });

/** One step: records the version it applies; fails where the host has a FAIL file. */
function phases(dir: string): void {
  mkdirSync(join(dir, 'configure.d'), { recursive: true });
  writeFileSync(join(dir, 'configure.d', '10-app'), '#!/bin/sh\n[ -f /etc/bootstrap/FAIL ] && { echo "told to fail"; exit 3; }\n[ -f /etc/bootstrap/SLOW ] && sleep "$(cat /etc/bootstrap/SLOW)"\necho "$BOOTSTRAP_ACTION ${BOOTSTRAP_VERSION:-} $BOOTSTRAP_LABEL" >> /var/bootstrap/applied.log\n', { mode: 0o755 });
}

const version = (h: FleetHost) => JSON.parse(readFileSync(join(h.state, 'state.json'), 'utf8')).products.haproxy?.version ?? null;
const statuses = (report: any) => Object.fromEntries(report.hosts.map((r: any) => [r.host, r.status]));

describe('fleet rollouts with ansible', { skip: unavailable || false, concurrency: false }, () => {
  let dir: string;
  let bin: string;
  let fleet: Fleet;

  before(() => {
    if (unavailable) return;
    dir = newFleetDir();
    bin = installAgent(dir);
  });
  after(() => {
    if (dir) removeFleetDir(dir);
  });

  /** A fresh fleet of `n` provisioned hosts for one test, torn down after it. */
  async function withFleet(n: number, fn: (f: Fleet) => Promise<void>): Promise<void> {
    const fdir = join(dir, `f${Date.now()}`);
    mkdirSync(fdir);
    fleet = makeFleet({ hosts: n, ini, phases, bin, dir: fdir });
    try {
      for (const h of fleet.hosts) {
        const r = fleet.runIn(h, [bin, 'server.provision', '-q']);
        assert.equal(r.code, 0, r.stderr);
        rmSync(join(h.state, 'applied.log'), { force: true });
      }
      await fn(fleet);
    } finally {
      fleet.teardown();
    }
  }

  it('all succeed: preflight, a canary, then batches; each run labelled with the rollout and its batch', () =>
    withFleet(5, async (f) => {
      const r = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r1', batches: [2, '100%'] });
      assert.equal(r.code, 0, r.output);
      assert.deepEqual(Object.values(statuses(r.report)), Array(5).fill('success'));
      assert.deepEqual(r.report.hosts.map((h: any) => h.batch), ['canary', 'batch-1', 'batch-1', 'batch-2', 'batch-2']);
      for (const h of f.hosts) {
        assert.equal(version(h), '2.8');
        assert.match(readFileSync(join(h.state, 'applied.log'), 'utf8'), /^upgrade 2\.8 r1\/(canary|batch-\d)$/m);
      }
      assert.match(r.output, /HOST \| BATCH \| STATUS/);
      // The same rollout again: every host is already at the target.
      const again = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r1b' });
      assert.equal(again.code, 0, again.output);
      assert.deepEqual(Object.values(statuses(again.report)), Array(5).fill('skipped'));
    }));

  it('the canary fails: no other host is touched', () =>
    withFleet(4, async (f) => {
      writeFileSync(join(f.hosts[0]!.etc, 'FAIL'), '');
      const r = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r2' });
      assert.notEqual(r.code, 0);
      assert.deepEqual(statuses(r.report), { host01: 'failed', host02: 'not run', host03: 'not run', host04: 'not run' });
      assert.match(r.report.hosts[0].failed_at, /configure\/10-app: exit 3/);
      assert.equal(r.report.hosts[0].exit_code, 1);
      for (const h of f.hosts.slice(1)) assert.equal(existsSync(join(h.state, 'applied.log')), false);
      assert.equal(r.report.stopped, true);
    }));

  it('a failure past the fleet-wide budget in a later batch: no further host starts, and fleet backout puts every earlier host back', () =>
    withFleet(5, async (f) => {
      writeFileSync(join(f.hosts[3]!.etc, 'FAIL'), '');
      const r = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r3', batches: [2, 1, '100%'], max_fail_percentage: 10, backout: 'fleet' });
      assert.notEqual(r.code, 0);
      assert.deepEqual(statuses(r.report), { host01: 'backed out', host02: 'backed out', host03: 'backed out', host04: 'failed', host05: 'not run' });
      assert.equal(r.report.budget_exceeded, true);
      assert.match(r.report.stop_reason, /failure budget: 1 of 5 hosts failed \(host04\)/);
      for (const h of f.hosts) assert.equal(version(h), '2.6', h.name);
      assert.match(readFileSync(join(f.hosts[0]!.state, 'applied.log'), 'utf8'), /^upgrade 2\.6 r3\/backout$/m);
      assert.equal(existsSync(join(f.hosts[4]!.state, 'applied.log')), false);
    }));

  it('a failure within the budget: the rollout goes on (and the playbook still fails)', () =>
    withFleet(5, async (f) => {
      writeFileSync(join(f.hosts[2]!.etc, 'FAIL'), '');
      const r = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r4', batches: [2, '100%'], max_fail_percentage: 40 });
      assert.notEqual(r.code, 0);
      assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'success', host03: 'failed', host04: 'success', host05: 'success' });
      assert.equal(r.report.budget_exceeded, false);
      assert.equal(r.report.stopped, false);
    }));

  it('on_fail=continue: a failure stops nothing', () =>
    withFleet(3, async (f) => {
      writeFileSync(join(f.hosts[0]!.etc, 'FAIL'), '');
      const r = f.rollout({ command: 'mode', mode: 'active', rollout_id: 'r5', on_fail: 'continue' });
      assert.notEqual(r.code, 0);
      assert.deepEqual(statuses(r.report), { host01: 'failed', host02: 'success', host03: 'success' });
    }));

  it('an unreachable host at preflight: nothing changes anywhere', () =>
    withFleet(3, async (f) => {
      f.stopSshd(f.hosts[1]!);
      const r = f.rollout({ command: 'upgrade', product: 'haproxy', version: '2.8', rollout_id: 'r6' });
      assert.notEqual(r.code, 0);
      assert.deepEqual(statuses(r.report), { host01: 'not run', host02: 'unreachable', host03: 'not run' });
      assert.match(r.report.stop_reason, /preflight: host02/);
      for (const h of f.hosts) assert.equal(version(h), '2.6');
    }));

  it('a host whose run lock is held is retried with --wait, then counted busy', () =>
    withFleet(2, async (f) => {
      const h = f.hosts[1]!;
      writeFileSync(join(h.etc, 'SLOW'), '30');
      const holder = f.spawnIn(h, [bin, 'server.refresh', '-q']);
      try {
        for (let i = 0; i < 200 && !existsSync(join(h.state, 'run.lock')); i++) spawnSync('sleep', ['0.05']);
        const r = f.rollout({ command: 'mode', mode: 'active', rollout_id: 'r7', busy_wait: 1, on_fail: 'continue' });
        assert.notEqual(r.code, 0);
        assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'busy' });
        assert.equal(r.report.hosts[1].exit_code, 75);
      } finally {
        holder.kill('SIGTERM');
      }
    }));
});
