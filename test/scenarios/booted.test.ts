// End to end on booted Debian 12 and 13 machines (systemd as PID 1 under systemd-nspawn,
// test/helpers/booted.ts): the package meant for each installed with apt-get, the units run by
// the real systemd (timers, a reboot and the resume), a fleet/rollout.yml whose run reboots the
// machine, then removed and purged as docs/packages.md says. One boot per machine (plus its two
// reboots); the two machines run at the same time.
// Cost (docs/testing.md): the two root filesystems are built once (100-190 s, in parallel, then
// cached in /var/tmp/bootstrap-test-rootfs), the packages once per build (shared with
// deb.test.ts); then about 5 minutes of scenarios, most of it the playbook runs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ansibleInventory, bootedUnavailable, bootMachine, machinesDir, receiver, rootfs, run, sshKeyPair, sweepStale, type Machine, type Receiver, type Suite } from '../helpers/booted.js';
import { root } from '../helpers/cli.js';
import { debNames, repackDeb, sharedDebs } from '../helpers/debs.js';

const skip = bootedUnavailable();
if (skip) console.log(`# booted machines skipped: ${skip}`);

const started = Date.now();
const seconds = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

const machines: { suite: Suite; release: number; deb: string; pkg: string }[] = [
  { suite: 'bookworm', release: 12, deb: debNames.node, pkg: 'bootstrap-agent-node' },
  { suite: 'trixie', release: 13, deb: debNames.all, pkg: 'bootstrap-agent' },
];
const units = ['bootstrap-heartbeat.service', 'bootstrap-heartbeat.timer', 'bootstrap-refresh.service', 'bootstrap-refresh.timer', 'bootstrap-resume.service'];

const ini = (name: string, url: string) => `[server]
name = ${name}
modes = active
default_mode = active

[phases]
script_timeout = 120
run_timeout = 900

[callback]
url = ${url}/callback
timeout = 5

[log]
file = /var/log/bootstrap/bootstrap.log

[heartbeat.receiver]
type = http
url = ${url}/health
expect_status = 200
timeout = 2
`;

// configure.d: a step that is slow while /etc/bootstrap/SLOW exists (naming its run in
// /run/slow-run), one that asks for one reboot when /etc/bootstrap/reboot-once exists, one after
// it that records the boot it ran in, and one that fails while /etc/bootstrap/FAIL exists.
const steps: Record<string, string> = {
  'configure.d/05-slow': '#!/bin/sh\n[ -f /etc/bootstrap/SLOW ] || exit 0\necho "$BOOTSTRAP_RUN_ID" > /run/slow-run\nsleep "$(cat /etc/bootstrap/SLOW)"\n',
  'configure.d/10-hello': '#!/bin/sh\necho "$BOOTSTRAP_ACTION $BOOTSTRAP_RUN_ID" >> /var/tmp/runs.log\n',
  'configure.d/20-reboot-once': '#!/bin/sh\nif [ -e /etc/bootstrap/reboot-once ]; then\n  rm /etc/bootstrap/reboot-once\n  echo "test: reboot once" > "$BOOTSTRAP_REBOOT_FILE"\nfi\n',
  'configure.d/30-after': '#!/bin/sh\necho "$BOOTSTRAP_RUN_ID $(cat /proc/sys/kernel/random/boot_id)" >> /var/tmp/after.log\n',
  'configure.d/40-fail': '#!/bin/sh\n[ -e /etc/bootstrap/FAIL ] || exit 0\necho "test: fails after the reboot"\nexit 3\n',
};

// The timers, shortened: the refresh 3 s after the timer starts (OnBootSec= has passed by then) or
// the machine boots, then 15 s after each run; the checkup as soon, then every 10 s. One empty
// assignment first: it empties every monotonic setting of the unit, not only the one it names.
const dropIns: Record<string, string> = {
  '/etc/systemd/system/bootstrap-refresh.timer.d/test.conf': '[Timer]\nOnBootSec=\nOnActiveSec=3s\nOnBootSec=3s\nOnUnitInactiveSec=15s\nRandomizedDelaySec=0\nAccuracySec=1s\n',
  '/etc/systemd/system/bootstrap-heartbeat.timer.d/test.conf': '[Timer]\nOnBootSec=\nOnActiveSec=3s\nOnBootSec=3s\nOnUnitActiveSec=10s\nRandomizedDelaySec=0\n',
};

// fleet/install.yml (install, upgrade, put back) and fleet/rollout.yml (a rollout with a real
// reboot) over ssh into the machines. Where the checkout lacks one of them its scenarios are
// skipped, saying so; BOOTSTRAP_TEST_FLEET_DIR points at another fleet/ dir.
const fleetDir = process.env['BOOTSTRAP_TEST_FLEET_DIR'] ?? join(root, 'fleet');
const missing = (book: string) => (existsSync(join(fleetDir, book)) ? false : `no ${fleetDir}/${book} in this checkout`);
const noInstallYml = missing('install.yml');
const noRolloutYml = missing('rollout.yml');
for (const why of [noInstallYml, noRolloutYml]) if (!skip && why) console.log(`# booted: scenarios skipped: ${why}`);

/** Runs fleet/`book` on `inventory` with these vars; its JSON report and first row. */
async function playbook(book: string, inventory: string, work: string, vars: Record<string, unknown>) {
  mkdirSync(work, { recursive: true });
  const reportDir = mkdtempSync(join(work, 'report-'));
  const varsFile = `${reportDir}.json`;
  writeFileSync(varsFile, JSON.stringify({ report_dir: reportDir, busy_wait: 120, canary: 1, batches: ['100%'], ...vars }));
  const env = { ...process.env, ANSIBLE_CONFIG: join(fleetDir, 'ansible.cfg'), ANSIBLE_LOCAL_TEMP: join(work, 'ansible-local'), ANSIBLE_NOCOLOR: '1' };
  const t = Date.now();
  const r = await run(['ansible-playbook', '-i', inventory, join(fleetDir, book), '-e', `@${varsFile}`], { cwd: fleetDir, env, timeoutMs: 600_000 });
  console.log(`# booted: ${book} (${basename(work)}) took ${((Date.now() - t) / 1000).toFixed(0)} s`);
  const files = readdirSync(reportDir).filter((n) => n.endsWith('.json'));
  const report = files.length ? JSON.parse(readFileSync(join(reportDir, files[0]!), 'utf8')) : null;
  return { code: r.code, output: `${r.stdout}\n${r.stderr}`, report, row: report?.hosts?.[0] };
}
const installYml = (inventory: string, work: string, vars: Record<string, unknown>) => playbook('install.yml', inventory, work, { settle: 1, ...vars });

/** A shell line waiting (bounded) until none of these units runs: a oneshot service's run is `activating`, never `active`. */
const idle = (...units: string[]) => `for i in $(seq 600); do systemctl show -p ActiveState --value ${units.join(' ')} | grep -qx -e active -e activating -e deactivating -e reloading || exit 0; sleep 0.2; done; exit 1`;

/**
 * fleet/rollout.yml `command=refresh` whose run asks for one reboot (and, with `fail`, fails after
 * it). The refresh timer is stopped first and its run awaited, so the rollout's run is the one
 * that asks; the reboot starts the (enabled) timer again, and so does the end, whatever happened.
 */
async function rebootingRollout(m: Machine, inventory: string, work: string, id: string, fail = false) {
  await m.sh(`systemctl stop bootstrap-refresh.timer && ${idle('bootstrap-refresh.service', 'bootstrap-resume.service')}`, { timeoutMs: 180_000 });
  const bootId = (await m.sh('cat /proc/sys/kernel/random/boot_id')).trim();
  const boots = m.boots();
  await m.sh(`touch /etc/bootstrap/reboot-once${fail ? ' /etc/bootstrap/FAIL' : ''}`);
  const vars = { command: 'refresh', rollout_id: id, reboot_timeout: 300, reboot_poll: 1 };
  const r = await playbook('rollout.yml', inventory, work, vars).finally(() => m.ssh('rm -f /etc/bootstrap/reboot-once /etc/bootstrap/FAIL; systemctl start bootstrap-refresh.timer'));
  assert.ok(r.report, r.output);
  assert.equal(m.boots(), boots + 1, `the machine rebooted once\n${r.output}`);
  const newBoot = (await m.sh('cat /proc/sys/kernel/random/boot_id')).trim();
  assert.notEqual(newBoot, bootId);
  return { ...r, bootId, newBoot };
}

/** Adds the timers' and units' state to a wait's error. */
const explained = (m: Machine) => async (e: Error): Promise<never> => {
  const state = await m.ssh('systemctl list-timers --all --no-pager; systemctl status --no-pager "bootstrap-*"; tail -n 30 /var/log/bootstrap/bootstrap.log');
  throw new Error(`${e.message}\n${state.stdout}${state.stderr}`);
};

describe('booted Debian machines (systemd-nspawn)', { skip, timeout: 1_200_000, concurrency: true }, () => {
  const dir = skip ? '' : machinesDir();
  let ready: Promise<{ key: string; debs: string; roots: Record<Suite, string> }>;
  before(() => {
    // Everything slow at once: both root filesystems and the packages.
    ready = (async () => {
      await sweepStale();
      const [key, debs, bookworm, trixie] = await Promise.all([sshKeyPair(join(dir, 'ssh-key')), sharedDebs(), rootfs('bookworm'), rootfs('trixie')]);
      console.log(`# booted: root filesystems and packages ready after ${seconds()}`);
      return { key, debs, roots: { bookworm, trixie } };
    })();
    ready.catch(() => {});
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`# booted: whole file ${seconds()}`);
  });

  for (const { suite, release, deb, pkg } of machines) {
    // One machine's scenarios build on each other: in order (the two machines run side by side).
    describe(`Debian ${release} (${suite}), ${pkg}`, { concurrency: 1 }, () => {
      let m: Machine;
      let rx: Receiver;
      let inventory: string;
      let v1: string;
      let repacked: Promise<{ v2: string; broken: string }>;
      const work = join(dir, `fleet-${suite}`);
      before(async () => {
        const { key, debs, roots } = await ready;
        m = await bootMachine({ rootfs: roots[suite], dir: join(dir, suite), name: `bs-${suite}`, sshKey: key, bindRo: { [debs]: '/mnt/debs' } });
        await m.ready();
        rx = await receiver(m);
        inventory = ansibleInventory([m], key, join(work, 'inventory'));
        v1 = join(debs, deb);
        // The upgrade's packages, made while the first scenarios run.
        if (!noInstallYml) {
          mkdirSync(work, { recursive: true });
          repacked = Promise.all([repackDeb(v1, join(work, 'v2.deb'), '9.0.0'), repackDeb(v1, join(work, 'broken.deb'), '9.0.1', true)]).then(([v2, broken]) => ({ v2, broken }));
          repacked.catch(() => {});
        }
        console.log(`# booted: ${suite} up after ${seconds()}`);
      });
      after(async () => {
        rx?.close();
        const t = Date.now();
        await m?.teardown();
        console.log(`# booted: ${suite} torn down in ${Date.now() - t} ms`);
      });

      it(`apt-get install ./${deb} with no network: bootstrap --version works, the five units are installed and none is enabled`, async () => {
        assert.match(await m.sh('ip -o link | grep -v " lo:" || true'), /^$/, 'the machine has no network but loopback');
        await m.sh(`cd /mnt/debs && apt-get install -y -q ./${deb}`, { timeoutMs: 180_000 });
        assert.equal((await m.sh(`dpkg-query -W -f='\${Status}' ${pkg}`)).trim(), 'install ok installed');
        assert.equal((await m.sh('bootstrap --version')).trim(), deb.split('_')[1]!.replace(/-1$/, ''));
        const shebang = (await m.sh('head -n 1 /usr/lib/bootstrap-agent/bin/bootstrap')).trim();
        if (release === 12) {
          assert.equal(shebang, '#!/usr/lib/bootstrap-agent/node/bin/node');
          assert.match(await m.sh('/usr/lib/bootstrap-agent/node/bin/node --version'), /^v24\./);
          assert.equal((await m.ssh('command -v node')).code, 1, 'Debian 12 gets no nodejs');
        } else {
          assert.equal(shebang, '#!/usr/bin/node');
          assert.match(await m.sh('node --version'), /^v20\.(19|[2-9]\d)\./, "Debian 13's own nodejs");
        }
        assert.equal((await m.sh('systemctl list-unit-files --no-legend "bootstrap-*"')).trim().split('\n').length, 5);
        const enabled = await m.ssh(`systemctl is-enabled ${units.join(' ')}`);
        assert.deepEqual(enabled.stdout.trim().split('\n'), units.map((u) => (u.endsWith('.timer') || u === 'bootstrap-resume.service' ? 'disabled' : 'static')));
        assert.match(await m.ssh(`systemctl is-active ${units.join(' ')}`).then((r) => r.stdout), /^(inactive\n){5}$/);
      });

      it('configured and enabled: a provision, then the refresh timer fires a refresh and the heartbeat timer reports, both to the receiver; systemctl status shows them', async () => {
        await m.put('/etc/bootstrap/bootstrap.ini', ini(m.name, rx.url));
        for (const [path, text] of Object.entries(steps)) await m.put(`/etc/bootstrap/phases/${path}`, text, '755');
        await m.sh('bootstrap server.provision', { timeoutMs: 180_000 });
        const provision = await rx.waitFor((r) => r.body?.action === 'provision', 'provision callback');
        assert.equal(provision.body.status, 'success');
        for (const [path, text] of Object.entries(dropIns)) await m.put(path, text);
        await m.sh('systemctl daemon-reload && systemctl enable --now bootstrap-refresh.timer bootstrap-heartbeat.timer && systemctl enable bootstrap-resume.service');
        const refresh = await rx.waitFor((r) => r.body?.kind === 'run' && r.body?.action === 'refresh', 'refresh callback from the timer', 180_000).catch(explained(m));
        assert.equal(refresh.body.status, 'success', JSON.stringify(refresh.body));
        assert.equal(refresh.body.server, m.name);
        assert.equal(refresh.delivery, refresh.body.id);
        await rx.waitFor((r) => r.method === 'GET' && r.url === '/health', "the heartbeat's http check");
        const checkup = await rx.waitFor((r) => r.body?.kind === 'checkup', 'checkup report from the heartbeat timer', 180_000).catch(explained(m));
        assert.equal(checkup.body.status, 'success', JSON.stringify(checkup.body));
        const status = (await m.ssh('systemctl status --no-pager bootstrap-refresh.timer bootstrap-heartbeat.timer bootstrap-refresh.service')).stdout;
        // Bookworm names the unit by /lib, trixie by /usr/lib; a timer is `running` while its service runs.
        const shown = (unit: string) => new RegExp(`[●○] ${unit.replace('.', '\\.')} - [^\\n]*\\n\\s+Loaded: loaded \\((/usr)?/lib/systemd/system/${unit.replace('.', '\\.')}; (enabled|static)`);
        for (const unit of ['bootstrap-refresh.timer', 'bootstrap-heartbeat.timer', 'bootstrap-refresh.service']) assert.match(status, shown(unit));
        assert.match(status, /bootstrap-heartbeat\.timer - [^\n]*\n[^\n]*\n\s+Drop-In: [^\n]*\n[^\n]*test\.conf\n\s+Active: active \((waiting|running)\)/);
        assert.match(status, /TriggeredBy: ● bootstrap-refresh\.timer/);
      });

      it('reboot and resume: a step asks for a reboot, the machine boots again, bootstrap-resume.service ends the same run in success', async () => {
        const bootId = (await m.sh('cat /proc/sys/kernel/random/boot_id')).trim();
        const boots = m.boots();
        await m.sh('touch /etc/bootstrap/reboot-once && systemctl start --no-block bootstrap-refresh.service');
        const rebooting = await rx.waitFor((r) => r.body?.status === 'rebooting', 'rebooting callback', 180_000);
        const id = rebooting.body.id as string;
        const newBoot = await m.rebooted(bootId);
        assert.equal(m.boots(), boots + 1, 'systemd-nspawn exited for the reboot and was started again');
        const done = await rx.waitFor((r) => r.body?.id === id && r.body?.status !== 'rebooting', `final callback of ${id}`, 180_000);
        assert.equal(done.body.status, 'success', JSON.stringify(done.body));
        assert.ok(rx.requests.indexOf(rebooting) < rx.requests.indexOf(done));
        // The step after the reboot ran once, in the new boot, in the same run.
        assert.match(await m.sh('cat /var/tmp/after.log'), new RegExp(`^${id} ${newBoot}$`, 'm'));
        assert.doesNotMatch(await m.sh('cat /var/tmp/after.log'), new RegExp(`^${id} ${bootId}$`, 'm'));
        assert.match(await m.sh('journalctl -b --no-pager -o cat -u bootstrap-resume.service'), new RegExp(id));
      });

      // A rollout with a real reboot, on one machine each (CI time: each costs a reboot and a
      // rollout, about a minute): success on Debian 12, a resumed run that fails on Debian 13.
      if (release === 12) {
        it('fleet/rollout.yml refresh, the run asks for a reboot: `rebooting` while down, waited for over ssh, success once the same run ended in the new boot and the machine is healthy', { skip: noRolloutYml }, async () => {
          const from = rx.requests.length;
          const r = await rebootingRollout(m, inventory, work, 'rb-ok');
          assert.equal(r.code, 0, r.output);
          const row = r.row;
          assert.equal(row.status, 'success', JSON.stringify(row));
          assert.equal(row.rebooted, true, `${JSON.stringify(row)}\n${r.output}`);
          assert.equal(row.exit_code, 0);
          assert.ok(r.output.includes(`${m.name}: rebooting (run ${row.run_id} paused for a reboot); waiting up to 300 s`), `the operator sees it rebooting\n${r.output}`);
          const seen = rx.requests.slice(from).filter((x) => x.body?.id === row.run_id).map((x) => [x.body.status, x.body.label]);
          assert.deepEqual(seen, [['rebooting', 'rb-ok/canary'], ['success', 'rb-ok/canary']], 'the same run paused, then ended in success');
          // The step after the reboot ran in the new boot, in that run; the machine was checked healthy after it.
          assert.match(await m.sh('cat /var/tmp/after.log'), new RegExp(`^${row.run_id} ${r.newBoot}$`, 'm'));
          const journal = JSON.parse(await m.sh(`bootstrap runs.show ${row.run_id} --json`));
          assert.equal(journal.status, 'success');
          assert.equal(journal.label, 'rb-ok/canary');
          const status = JSON.parse(await m.sh('bootstrap server.status --json'));
          assert.equal(status.paused_run, null);
          assert.equal(status.last_checkup.healthy, true);
          assert.ok(Date.parse(status.last_checkup.finished_at) >= Date.parse(row.finished_at), 'a checkup after the resumed run');
          assert.deepEqual(r.report.counts, { success: 1 });
          assert.equal(r.report.stopped, false);
          assert.deepEqual([row.before?.mode, row.after?.mode], ['active', 'active'], 'before -> after');
        });
      } else {
        it('fleet/rollout.yml refresh whose run fails after its reboot: failed (the resumed run\'s step), the budget stops the rollout before the next batch', { skip: noRolloutYml }, async () => {
          // The same machine again under a second name, in the batch after the canary: it must not run.
          const later = `${m.name}-later`;
          const two = join(work, 'inventory-two.ini');
          const first = readFileSync(inventory, 'utf8').trimEnd().split('\n');
          writeFileSync(two, `${[...first, first[1]!.replace(/^\S+/, later)].join('\n')}\n`);
          // Its reboot command drops the ssh sessions (the rollout's among them) before the reboot:
          // the run's output never arrives, and the playbook finds the run by its label.
          await m.put('/usr/local/sbin/reboot-dropping-ssh', '#!/bin/sh\nkill -9 $(pidof sshd sshd-session)\nexec systemctl reboot\n', '755');
          await m.sh("sed -i '/^\\[phases\\]$/a reboot_command = /usr/local/sbin/reboot-dropping-ssh' /etc/bootstrap/bootstrap.ini");
          const from = rx.requests.length;
          const r = await rebootingRollout(m, two, work, 'rb-fail', true).finally(() => m.ssh("sed -i '/^reboot_command = /d' /etc/bootstrap/bootstrap.ini"));
          assert.notEqual(r.code, 0, r.output);
          assert.deepEqual(r.report.hosts.map((x: any) => [x.host, x.status]), [[m.name, 'failed'], [later, 'not run']], JSON.stringify(r.report.hosts));
          const row = r.row;
          assert.equal(row.rebooted, true, `${JSON.stringify(row)}\n${r.output}`);
          assert.match(row.failed_at, /^configure\/40-fail: /);
          assert.equal(row.exit_code, 1);
          assert.ok(r.output.includes(`${m.name}: rebooting (run ${row.run_id} paused for a reboot; the connection dropped before its output arrived)`), r.output);
          assert.equal(r.report.stopped, true);
          assert.match(r.report.stop_reason, /^failure budget: 1 of 2 hosts failed/);
          const ended = rx.requests.slice(from).filter((x) => x.body?.kind === 'run' && x.body?.label?.startsWith('rb-fail/')).map((x) => [x.body.id, x.body.status]);
          assert.deepEqual(ended, [[row.run_id, 'rebooting'], [row.run_id, 'failure']], 'one run, paused then failed; nothing of the next batch ran');
          assert.match(await m.sh('cat /var/tmp/after.log'), new RegExp(`^${row.run_id} ${r.newBoot}$`, 'm'));
        });
      }

      it('fleet/install.yml upgrades the agent while a refresh runs: it waits for the run to end (which succeeds), then upgrades', { skip: noInstallYml }, async () => {
        const { v2 } = await repacked;
        await m.sh('rm -f /run/slow-run && echo 6 > /etc/bootstrap/SLOW && systemctl start --no-block bootstrap-refresh.service');
        await m.sh('for i in $(seq 600); do [ -s /run/slow-run ] && exit 0; sleep 0.2; done; exit 1', { timeoutMs: 180_000 });
        const slowRun = (await m.sh('cat /run/slow-run')).trim();
        const r = await installYml(inventory, work, { package: v2 }).finally(() => m.ssh('rm -f /etc/bootstrap/SLOW'));
        assert.equal(r.code, 0, r.output);
        assert.equal(r.row.status, 'success', JSON.stringify(r.row));
        const done = await rx.waitFor((x) => x.body?.id === slowRun && x.body?.kind === 'run', `callback of ${slowRun}`);
        assert.equal(done.body.status, 'success', 'the run was not interrupted');
        assert.ok(Date.parse(r.row.installed_at) >= Date.parse(done.body.finished_at), `installed at ${r.row.installed_at}, the run ended at ${done.body.finished_at}`);
        assert.ok(r.row.waited_s >= 1, `waited ${r.row.waited_s} s`);
        assert.equal((await m.sh('bootstrap --version')).trim(), '9.0.0');
        assert.equal(JSON.parse(await m.sh('bootstrap server.status --json')).disabled, null, 'runs allowed again');
        assert.match((await m.ssh('systemctl is-active bootstrap-refresh.timer bootstrap-heartbeat.timer')).stdout, /^(active\n){2}$/);
      });

      it('fleet/install.yml puts the previous package back where the new one fails (bootstrap --version), and the timers still run', { skip: noInstallYml }, async () => {
        const { broken } = await repacked;
        const r = await installYml(inventory, work, { package: broken });
        assert.notEqual(r.code, 0, r.output);
        assert.equal(r.row?.status, 'failed', r.output);
        assert.equal(r.row.put_back, true, r.row.message);
        assert.match(r.row.message, /put back/);
        assert.equal((await m.sh('bootstrap --version')).trim(), '9.0.0');
        assert.equal((await m.sh(`dpkg-query -W -f='\${Version}' ${pkg}`)).trim(), '9.0.0-1');
        assert.equal(JSON.parse(await m.sh('bootstrap server.status --json')).disabled, null, 'runs allowed again');
        const after = rx.requests.length;
        await rx.waitFor((x) => x.body?.kind === 'checkup', 'a checkup report after the put-back', 120_000, after);
      });

      it('apt-get remove leaves configuration, state, log, logrotate snippet and dangling enablement links; purge leaves /etc/bootstrap only', async () => {
        const wants = '/etc/systemd/system/timers.target.wants/bootstrap-refresh.timer';
        await m.sh(`apt-get remove -y -q ${pkg}`, { timeoutMs: 180_000 });
        await m.sh(`test ! -e /usr/bin/bootstrap && test ! -e /usr/lib/systemd/system/bootstrap-refresh.timer && test ! -e /usr/lib/bootstrap-agent`);
        await m.sh('test -f /etc/bootstrap/bootstrap.ini && test -d /etc/bootstrap/phases && test -f /var/bootstrap/state.json && test -f /var/log/bootstrap/bootstrap.log && test -f /etc/logrotate.d/bootstrap');
        await m.sh(`test -L ${wants} && test ! -e ${wants}`);
        assert.match((await m.ssh('systemctl is-active bootstrap-refresh.timer bootstrap-heartbeat.timer')).stdout, /^(inactive\n){2}$/, 'prerm stopped the timers');
        // A refresh the timer started before the remove may still be finishing: purge after it.
        await m.sh(idle('bootstrap-refresh.service', 'bootstrap-heartbeat.service', 'bootstrap-resume.service'), { timeoutMs: 180_000 });
        await m.sh(`apt-get purge -y -q ${pkg}`, { timeoutMs: 180_000 });
        await m.sh('test -f /etc/bootstrap/bootstrap.ini && test -x /etc/bootstrap/phases/configure.d/10-hello');
        await m.sh(`test ! -e /var/bootstrap && test ! -e /var/log/bootstrap && test ! -e /etc/logrotate.d/bootstrap && test ! -L ${wants}`);
        assert.doesNotMatch((await m.ssh(`dpkg-query -W -f='\${Status}' ${pkg}`)).stdout, /ok (installed|config-files)/);
      });

      it('fleet/install.yml installs the agent, its ini and phases tree on the purged machine and enables the units, which run', { skip: noInstallYml }, async () => {
        const config = join(work, 'config');
        for (const [path, text] of Object.entries(steps)) {
          mkdirSync(join(config, 'phases', path, '..'), { recursive: true });
          writeFileSync(join(config, 'phases', path), text, { mode: 0o755 });
        }
        writeFileSync(join(config, 'bootstrap.ini'), ini(m.name, rx.url).replace('modes = active', 'modes = active, standby'));
        const r = await installYml(inventory, work, { package: v1, config_dir: config });
        assert.equal(r.code, 0, r.output);
        assert.equal(r.row.status, 'success', JSON.stringify(r.row));
        assert.equal((await m.sh('bootstrap --version')).trim(), deb.split('_')[1]!.replace(/-1$/, ''));
        assert.match(await m.sh('cat /etc/bootstrap/bootstrap.ini'), /modes = active, standby/);
        assert.deepEqual((await m.sh('systemctl is-enabled bootstrap-refresh.timer bootstrap-heartbeat.timer bootstrap-resume.service')).trim().split('\n'), ['enabled', 'enabled', 'enabled']);
        const after = rx.requests.length;
        const checkup = await rx.waitFor((x) => x.body?.kind === 'checkup', 'a checkup report from the enabled timer', 120_000, after);
        assert.equal(checkup.body.server, m.name);
      });
    });
  }
});
