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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { fleetUnavailable, installAgent, makeFleet, newFleetDir, removeFleetDir, type Fleet, type FleetHost } from '../helpers/fleet.js';
import { root } from '../helpers/cli.js';
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

// A rollout with a reboot in it: several minutes on a loaded 2-core machine (each ssh command and
// agent start slows down many times over); far less alone.
const rolloutTimeout = 480_000;

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
function rebootWhenAsked(f: Fleet, h: FleetHost, o: { downMs: number; back?: boolean; onBoot?: () => void; seen?: (moment: 'down' | 'up') => void }): Promise<void> {
  const done = machineReboots(f, h, o);
  done.catch(() => {}); // rethrown where the test awaits it, after its rollout: never an unhandled rejection meanwhile
  return done;
}

async function machineReboots(f: Fleet, h: FleetHost, o: { downMs: number; back?: boolean; onBoot?: () => void; seen?: (moment: 'down' | 'up') => void }): Promise<void> {
  const asked = join(h.state, 'reboot-asked');
  await until(`${h.name} to ask for its reboot`, () => existsSync(asked), rolloutTimeout);
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

  it('behind haproxy, a canary that reboots: drained across its reboot, success only once its resumed run (the same id) ended and it is healthy; the rest proceed after it', async () => {
    const app = join(dir, 'app.js');
    writeFileSync(app, "require('http').createServer((q,s)=>s.end('ok')).listen(8080,'::');\n");
    const serve = (enter: (argv: string[]) => unknown) => enter(['sh', '-c', `while :; do "${process.execPath}" ${app}; sleep 0.1; done`]);
    await withFleet(
      3,
      async (f) => {
        const [h1, h2, h3] = f.hosts as [FleetHost, FleetHost, FleetHost];
        await until('every app UP in haproxy', () => Object.values(f.lbStatus()).filter((x) => x === 'UP').length === 3, 30_000);
        writeFileSync(join(h1.etc, 'ASK_REBOOT'), '');
        const lb: Record<string, string | undefined> = {};
        const rebooted = rebootWhenAsked(f, h1, { downMs: 1000, onBoot: () => serve((argv) => f.spawnIn(h1, argv)), seen: (m) => (lb[m] = f.lbStatus().host01) });
        const r = await f.rolloutAsync({ command: 'refresh', rollout_id: 'rb1', batches: ['100%'], reboot_timeout: 300, reboot_poll: 1 }, rolloutTimeout);
        await rebooted;
        assert.equal(r.code, 0, r.output);
        assert.deepEqual(statuses(r.report), { host01: 'success', host02: 'success', host03: 'success' });
        assert.match(lb.down ?? '', /^MAINT/, 'drained while down');
        assert.match(lb.up ?? '', /^MAINT/, 'still drained once back, before its run ended and it was healthy');
        assert.deepEqual(f.lbStatus(), { host01: 'UP', host02: 'UP', host03: 'UP' });
        const row = r.report.hosts[0];
        assert.equal(row.rebooted, true);
        const last = state(h1).last_run;
        assert.equal(row.run_id, last.id, 'the row is the resumed run: the same id');
        assert.ok(r.output.includes(`host01: rebooting (run ${last.id} paused for a reboot)`), 'the operator sees it rebooting');
        assert.equal(last.status, 'success');
        assert.equal(state(h1).paused_run, null);
        assert.equal(journal(h1, last.id).boots.length, 2, 'the run went on in a second boot');
        assert.ok(state(h1).last_checkup.healthy, 'checked healthy after its reboot');
        assert.match(applied(h1), new RegExp(`^refresh ${last.id} rb1/canary$`, 'm'));
        // The others ran only after the canary's resumed run ended.
        for (const h of [h2, h3]) {
          assert.equal(r.report.hosts.find((x: any) => x.host === h.name).rebooted, false);
          assert.ok(state(h).last_run.started_at > last.finished_at, `${h.name} started before the canary's resumed run ended`);
        }
      },
      { lb: true, ini: '\n[heartbeat.app]\ntype = http\nurl = http://127.0.0.1:8080/\ntimeout = 2\n', start: (_h, enter) => serve(enter) },
    );
  });

  // One fleet for both (CI time): the status is read off the fleet the failed rollout left.
  it('a host that never comes back within reboot_timeout, and one whose resumed run fails: both failed, the budget stops the rollout, nothing else changed; then command=status of that fleet', () =>
    withFleet(4, async (f) => {
      const [h1, h2, h3, h4] = f.hosts as [FleetHost, FleetHost, FleetHost, FleetHost];
      for (const h of [h1, h2]) writeFileSync(join(h.etc, 'ASK_REBOOT'), '');
      writeFileSync(join(h2.etc, 'FAIL_AFTER'), '');
      const gone = rebootWhenAsked(f, h1, { downMs: 0, back: false });
      const failing = rebootWhenAsked(f, h2, { downMs: 1000 });
      const before3 = readFileSync(join(h3.state, 'state.json'), 'utf8');
      // reboot_timeout per host (inventory): short where nothing will come back, generous where a
      // loaded machine boots and resumes.
      writeFileSync(f.inventory, readFileSync(f.inventory, 'utf8').replace(/^(host01 .*)$/m, '$1 reboot_timeout=15').replace(/^(host02 .*)$/m, '$1 reboot_timeout=300'));
      const r = await f.rolloutAsync({ command: 'refresh', rollout_id: 'rb2', canary: 2, batches: ['100%'], reboot_poll: 1 }, rolloutTimeout);
      await Promise.all([gone, failing]);
      assert.ok(r.report, r.output);
      assert.notEqual(r.code, 0, r.output);
      assert.deepEqual(statuses(r.report), { host01: 'failed', host02: 'failed', host03: 'not run', host04: 'not run' }, JSON.stringify(r.report?.hosts));
      const [row1, row2] = r.report.hosts;
      assert.match(row1.failed_at, /^did not come back from its reboot within reboot_timeout/);
      assert.equal(row1.rebooted, true);
      assert.equal(row1.exit_code, null);
      const last2 = state(h2).last_run;
      assert.equal(row2.run_id, last2.id);
      assert.equal(last2.status, 'failure');
      assert.match(row2.failed_at, /^configure\/20-app: /);
      assert.equal(row2.exit_code, 1);
      assert.match(r.report.stop_reason, /failure budget: 2 of 4 hosts failed/);
      assert.equal(readFileSync(join(h3.state, 'state.json'), 'utf8'), before3, 'host03 untouched');
      assert.equal(applied(h3), '');
      fleetStatus(f, h3, h4);
    }));
});

/** Jinja in every form. Templated anywhere on the controller, it creates a file in `marks` (its `{# #}` would vanish). */
const jinja = (marks: string, where: string) => `{{ lookup('pipe', 'touch ${marks}/${where}') }}{% set x = lookup('pipe', 'touch ${marks}/${where}-statement') %}{# ${where} #}`;

/**
 * command=status of a fleet whose host01 is down and host02's last run failed; `ok` is disabled
 * first, `hostile`'s agent prints Jinja where server.status has text, and as its version.
 */
function fleetStatus(f: Fleet, ok: FleetHost, hostile: FleetHost): void {
  const marks = join(f.dir, 'marks');
  mkdirSync(marks);
  assert.equal(f.runIn(ok, ['/etc/bootstrap/agent', 'server.disable', '--reason', 'kernel work', '-q']).code, 0);
  const printed = { mode: jinja(marks, 'mode'), provisioned: true, products: [{ name: jinja(marks, 'product'), version: '1' }], last_run: { id: 'x', action: 'refresh', status: 'failure', finished_at: jinja(marks, 'time'), label: jinja(marks, 'label') }, failed_runs_since_success: 1, last_success: { id: 'w', finished_at: 'then' } };
  writeFileSync(join(hostile.etc, 'agent'), '#!/bin/sh\ncase "$1" in --version) cat /etc/bootstrap/hostile.version ;; *) cat /etc/bootstrap/hostile.json ;; esac\n', { mode: 0o755 });
  writeFileSync(join(hostile.etc, 'hostile.version'), `${jinja(marks, 'version')}\n`);
  writeFileSync(join(hostile.etc, 'hostile.json'), JSON.stringify(printed));
  const before = readFileSync(join(ok.state, 'state.json'), 'utf8');
  const r = f.rollout({ command: 'status', status_id: 'st1' });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(readdirSync(marks), [], 'nothing a host printed was templated');
  assert.equal(r.report.status, 'st1');
  const rows = r.report.hosts;
  assert.deepEqual(
    rows.map((x: any) => [x.host, x.state, x.problems]),
    [
      ['host01', 'unreachable', ['unreachable']],
      ['host02', 'attention', ['last run failure', 'failed runs since the last success: 1']],
      ['host04', 'attention', ['last run failure', 'failed runs since the last success: 1']],
      ['host03', 'attention', ['disabled']],
    ],
    'the worst first, by name within a rank',
  );
  const [, failed, bad, disabled] = rows;
  assert.equal(failed.last_run.label, 'rb2/canary');
  assert.equal(bad.mode, printed.mode);
  // A line of at most 200 characters (the rest cut, marked …).
  assert.equal(bad.agent_version, `${jinja(marks, 'version').slice(0, 200)}…`);
  assert.deepEqual(bad.products, { [printed.products[0]!.name]: '1' });
  assert.equal(bad.last_run.label, printed.last_run.label);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.equal(disabled.agent_version, pkg.version);
  assert.equal(disabled.mode, 'standby');
  assert.deepEqual(disabled.products, { haproxy: '2.6', deepfiler: '1.4.0' });
  assert.equal(disabled.last_run.status, 'success');
  assert.equal(disabled.disabled.reason, 'kernel work');
  assert.deepEqual(disabled.callbacks, { pending: 0, dead: 0 });
  assert.match(r.output, /HOST \| STATE \| AGENT/);
  assert.ok(r.output.includes(`host04 | attention | ${bad.agent_version} | - | ${printed.mode}`), 'the table shows the hostile text as printed');
  assert.doesNotMatch(r.output, /TASK \[(Run the agent|What each server has now)/, 'preflight and the run plays do nothing');
  assert.equal(readFileSync(join(ok.state, 'state.json'), 'utf8'), before, 'read-only');
}
