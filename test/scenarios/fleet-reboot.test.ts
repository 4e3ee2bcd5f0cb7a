// fleet/rollout.yml and hosts that reboot in a rollout, and command=status, over real test servers
// (network namespaces with sshd, see helpers/fleet), on this machine's ansible-core only.
//
// A reboot cannot really happen here: a host's [phases] reboot_command marks that it was asked;
// the test then does what the machine would: once the agent has printed its run and exited, the
// host "goes down" (every process in its network namespace is killed: sshd, sessions), its boot
// id changes (the agent reads it from BOOTSTRAP_TEST_BOOT_ID_FILE), and after a while it "boots"
// (sshd again, in fresh namespaces) and runs `bootstrap server.resume`, as bootstrap-resume.service
// does. The playbook sees what it would see of a real reboot: a dropped connection, refused ones,
// then the server again.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { iniWith } from '../helpers/phases.js';

const unavailable = fleetUnavailable();
if (unavailable) console.log(`fleet reboot tests skipped: ${unavailable}`);

/** The agent as every host runs it: with the boot-id seam (the boot id a reboot changes). */
const wrapper = (bin: string) => `#!/bin/sh\nBOOTSTRAP_TEST_BOOT_ID_FILE=/etc/bootstrap/boot_id exec ${bin} "$@"\n`;

/**
 * configure.d/10-kernel asks for a reboot once where the host has ASK_REBOOT; 20-app runs after it
 * (so after the reboot), records the run and fails where the host has FAIL_AFTER.
 */
function phases(dir: string): void {
  mkdirSync(join(dir, 'configure.d'), { recursive: true });
  writeFileSync(join(dir, 'configure.d', '10-kernel'), '#!/bin/sh\n# bootstrap: may-reboot\n[ -f /etc/bootstrap/ASK_REBOOT ] && [ ! -f /var/bootstrap/asked ] || exit 0\ntouch /var/bootstrap/asked\necho "new kernel" > "$BOOTSTRAP_REBOOT_FILE"\n', { mode: 0o755 });
  writeFileSync(join(dir, 'configure.d', '20-app'), '#!/bin/sh\n[ -f /etc/bootstrap/FAIL_AFTER ] && { echo "app did not start"; exit 3; }\necho "$BOOTSTRAP_ACTION $BOOTSTRAP_RUN_ID $BOOTSTRAP_LABEL" >> /var/bootstrap/applied.log\n', { mode: 0o755 });
}

const ini = (extra = '') => iniWith({ script_timeout: 30, reboot_command: '/etc/bootstrap/reboot' }, extra);

const statuses = (report: any) => Object.fromEntries(report.hosts.map((r: any) => [r.host, r.status]));
const state = (h: FleetHost) => JSON.parse(readFileSync(join(h.state, 'state.json'), 'utf8'));
const journal = (h: FleetHost, id: string) => JSON.parse(readFileSync(join(h.state, 'runs', `${id}.json`), 'utf8'));
const applied = (h: FleetHost) => (existsSync(join(h.state, 'applied.log')) ? readFileSync(join(h.state, 'applied.log'), 'utf8') : '');

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Whether a rollout's agent call (its --label) still runs in the host. */
function agentRunning(h: FleetHost): boolean {
  const pids = spawnSync('ip', ['netns', 'pids', h.netns], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
  return pids.some((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--label');
    } catch {
      return false;
    }
  });
}

/**
 * What the machine does when the host's reboot is asked: it goes down once the agent has printed
 * its run, its boot id changes, and (unless `back` is false) it boots after `downMs` and resumes
 * the run as bootstrap-resume.service would (after `onBoot`, e.g. starting its app). Resolves
 * once it has done so; `seen` gets what the test watches at each moment.
 */
async function rebootWhenAsked(f: Fleet, h: FleetHost, o: { downMs: number; back?: boolean; onBoot?: () => void; seen?: (moment: 'down' | 'up') => void }): Promise<void> {
  const asked = join(h.state, 'reboot-asked');
  await until(`${h.name} to ask for its reboot`, () => existsSync(asked), 150_000);
  await until(`${h.name}'s agent to end`, () => !agentRunning(h), 60_000);
  // The moment a machine takes between `systemctl reboot` and its network going: the run's
  // output reaches the controller meanwhile.
  await sleep(500);
  f.powerOff(h);
  rmSync(asked);
  writeFileSync(join(h.etc, 'boot_id'), `boot-${Date.now()}\n`);
  o.seen?.('down');
  if (o.back === false) return;
  await sleep(o.downMs);
  f.powerOn(h);
  o.onBoot?.();
  o.seen?.('up');
  f.spawnIn(h, ['/etc/bootstrap/agent', 'server.resume', '-q']);
}

let dir: string;
let bin: string;
before(() => {
  if (unavailable) return;
  dir = newFleetDir();
  bin = installAgent(dir);
});
after(() => {
  if (dir) removeFleetDir(dir);
});

describe('fleet rollouts with reboots (ansible-core 2.14)', { skip: unavailable || false, concurrency: false }, () => {
  /** A fresh fleet of `n` provisioned hosts (each with its agent wrapper, reboot script and boot id) for one test. */
  async function withFleet(n: number, fn: (f: Fleet) => Promise<void>, o: { lb?: boolean; ini?: string; start?: Parameters<typeof makeFleet>[0]['start'] } = {}): Promise<void> {
    const fdir = join(dir, `f${Date.now()}`);
    mkdirSync(fdir);
    const f = makeFleet({
      hosts: n,
      ini: () => ini(o.ini),
      phases: (p) => phases(p),
      bin,
      dir: fdir,
      lb: o.lb ?? false,
      ...(o.start ? { start: o.start } : {}),
    });
    try {
      writeFileSync(f.inventory, readFileSync(f.inventory, 'utf8').replace(`bootstrap_bin=${bin}`, 'bootstrap_bin=/etc/bootstrap/agent'));
      for (const h of f.hosts) {
        writeFileSync(join(h.etc, 'agent'), wrapper(bin), { mode: 0o755 });
        writeFileSync(join(h.etc, 'reboot'), '#!/bin/sh\ntouch /var/bootstrap/reboot-asked\n', { mode: 0o755 });
        writeFileSync(join(h.etc, 'boot_id'), 'boot-1\n');
        const r = f.runIn(h, ['/etc/bootstrap/agent', 'server.provision', '-q']);
        assert.equal(r.code, 0, r.stderr);
        rmSync(join(h.state, 'applied.log'), { force: true });
      }
      await fn(f);
    } finally {
      f.teardown();
    }
  }

  it('a canary that reboots: rebooting, then success only once its resumed run (the same id) ended; the rest proceed after it', () =>
    withFleet(3, async (f) => {
      const [h1, h2, h3] = f.hosts as [FleetHost, FleetHost, FleetHost];
      writeFileSync(join(h1.etc, 'ASK_REBOOT'), '');
      const t0 = Date.now();
      const rebooted = rebootWhenAsked(f, h1, { downMs: 3000, seen: (m) => console.log('DEBUG', m, Date.now() - t0) });
      const r = await f.rolloutAsync({ command: 'refresh', rollout_id: 'rb1', batches: ['100%'], reboot_timeout: 120, reboot_poll: 1 }, 180_000, { ANSIBLE_CALLBACKS_ENABLED: 'ansible.posix.profile_tasks' });
      await rebooted;
      console.log('DEBUG end', Date.now() - t0, r.output);
      assert.equal(r.code, 0, r.output);
      assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'success', host03: 'success' });
      const row = r.report.hosts[0];
      assert.equal(row.rebooted, true);
      const last = state(h1).last_run;
      assert.equal(row.run_id, last.id, 'the row is the resumed run: the same id');
      assert.equal(last.status, 'success');
      assert.equal(state(h1).paused_run, null);
      assert.equal(journal(h1, last.id).boots.length, 2, 'the run went on in a second boot');
      assert.match(applied(h1), new RegExp(`^refresh ${last.id} rb1/canary$`, 'm'));
      // The others ran only after the canary's resumed run ended.
      for (const h of [h2, h3]) {
        assert.equal(r.report.hosts.find((x: any) => x.host === h.name).rebooted, false);
        assert.ok(state(h).last_run.started_at > last.finished_at, `${h.name} started before the canary's resumed run ended`);
      }
    }));
});
