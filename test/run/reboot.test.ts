// Reboot and resume: a step asks for a reboot, the run pauses, and goes on after the boot id
// changed — once, with the same inputs, never in a loop. A real reboot cannot happen here: the
// reboot command is a script that records its calls, and the boot id comes from the test seam
// BOOTSTRAP_TEST_BOOT_ID_FILE, which a test rewrites to "reboot".

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bin, collect, ended, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, readLines, script } from '../helpers/phases.js';
import { jsonReceiver, type HttpStub } from '../helpers/servers.js';
import { trials } from '../helpers/trials.js';

interface Rig {
  box: Sandbox;
  log: string;
  env: NodeJS.ProcessEnv;
  bodies: { delivery: string; body: any }[];
  stub: HttpStub;
  reboot(): void;
  state(): any;
  journal(id: string): any;
}

/** A sandbox whose reboot command records its calls (and a copy of the run lock's record), with a callback receiver. */
async function rig(phases: Record<string, string | number> = {}): Promise<Rig> {
  const stub = await jsonReceiver();
  const bodies = stub.bodies;
  const box0 = sandbox('');
  const reboot = script(join(box0.dir, 'reboot'), `echo "reboot $*" >> "${join(box0.dir, 'steps.log')}"; cp "${join(box0.stateDir, 'run.lock')}" "${join(box0.dir, 'lock-at-reboot')}"; "${process.execPath}" "${bin}" server.status --json > "${join(box0.dir, 'status-at-reboot')}"; [ ! -e "${join(box0.dir, 'reboot-fails')}" ]`);
  writeFileSync(box0.config, iniWith({ reboot_command: `${reboot} now`, backout: 'all', ...phases }, `\n[callback]\nurl = ${stub.url}/cb\ntimeout = 5\n`));
  const bootFile = join(box0.dir, 'boot_id');
  writeFileSync(bootFile, 'boot-1\n');
  const log = join(box0.dir, 'steps.log');
  const env = { LOG: log, BOOTSTRAP_TEST_BOOT_ID_FILE: bootFile };
  let boot = 1;
  return {
    box: box0,
    log,
    env,
    bodies,
    stub,
    reboot: () => writeFileSync(bootFile, `boot-${++boot}\n`),
    state: () => (existsSync(join(box0.stateDir, 'state.json')) ? JSON.parse(readFileSync(join(box0.stateDir, 'state.json'), 'utf8')) : { paused_run: null, last_run: null }),
    journal: (id: string) => JSON.parse(readFileSync(join(box0.stateDir, 'runs', `${id}.json`), 'utf8')),
  };
}

/** A rig for `fn`, cleaned up after it whatever happens. */
async function withRig(fn: (r: Rig) => Promise<void>, phases: Record<string, string | number> = {}): Promise<void> {
  const r = await rig(phases);
  try {
    await fn(r);
  } finally {
    r.box.cleanup();
    await r.stub.close();
  }
}

/** configure.d: 10-before, 20-ask (asks once: its flag file), its check, 30-after; post-configure.d: 10-post. */
function kernelTree(r: Rig): void {
  const dir = join(r.box.phasesDir, 'configure.d');
  script(join(dir, '10-before'), 'echo "10-before $BOOTSTRAP_RUN_ID" >> "$LOG"');
  script(join(dir, '10-before.backout'), 'echo "10-before.backout $BOOTSTRAP_FAILURE" >> "$LOG"');
  script(join(dir, '20-ask'), '# bootstrap: may-reboot\necho "20-ask maxconn=$BOOTSTRAP_HAPROXY_MAXCONN" >> "$LOG"\n[ -e "$LOG.asked" ] || { touch "$LOG.asked"; echo "new kernel 6.1" > "$BOOTSTRAP_REBOOT_FILE"; }');
  script(join(dir, '20-ask.check'), 'echo "20-ask.check" >> "$LOG"');
  script(join(dir, '20-ask.backout'), 'echo "20-ask.backout $BOOTSTRAP_FAILURE" >> "$LOG"');
  script(join(dir, '30-after'), 'echo "30-after maxconn=$BOOTSTRAP_HAPROXY_MAXCONN boot=$BOOTSTRAP_FACT_BOOT_ID" >> "$LOG"');
  script(join(r.box.phasesDir, 'post-configure.d', '10-post'), 'echo "10-post" >> "$LOG"');
  script(join(r.box.phasesDir, 'error.d', '10-e'), 'echo "error.d $BOOTSTRAP_FAILED_PHASE/$BOOTSTRAP_FAILED_STEP $BOOTSTRAP_FAILURE" >> "$LOG"');
}

describe('reboot and resume', () => {
  it('the pause: journal rebooting with the position, a rebooting callback, the snapshot kept (0600), the lock record says so, the reboot command once, nothing after the step', () =>
    withRig(async (r) => {
      kernelTree(r);
      const run = await r.box.run(['server.provision', '--json', '--label', 'r1'], { env: r.env });
      assert.equal(run.code, 0, run.stderr);
      const out = json(run);
      assert.equal(out.status, 'rebooting');
      const id = out.id;
      assert.deepEqual(readLines(r.log), [`10-before ${id}`, '20-ask maxconn=4096', '20-ask.check', 'reboot now']);
      const j = r.journal(id);
      assert.equal(j.status, 'rebooting');
      assert.deepEqual(j.reboots.map((x: any) => [x.phase, x.step, x.reason]), [['configure', '20-ask', 'new kernel 6.1']]);
      assert.equal(j.phases.find((p: any) => p.phase === 'configure').status, 'paused');
      assert.equal(j.phases.find((p: any) => p.phase === 'post-configure').status, 'pending');
      const snapshot = join(r.box.stateDir, 'runs', `${id}.config.json`);
      assert.equal(statSync(snapshot).mode & 0o777, 0o600);
      assert.equal(JSON.parse(readFileSync(join(r.box.dir, 'lock-at-reboot'), 'utf8')).waiting, 'reboot');
      assert.equal(JSON.parse(readFileSync(join(r.box.dir, 'status-at-reboot'), 'utf8')).lock.holder.waiting, 'reboot', 'server.status shows it');
      const paused = r.state().paused_run;
      assert.equal(paused.id, id);
      assert.equal(paused.boot_id, 'boot-1');
      assert.equal(r.state().provisioned_at, null, 'nothing committed yet');
      assert.equal(r.bodies.length, 1);
      assert.equal(r.bodies[0]!.body.status, 'rebooting');
      assert.equal(r.bodies[0]!.body.id, id);
      assert.equal(r.bodies[0]!.delivery, `${id}.reboot-1`);
      assert.equal(r.bodies[0]!.body.label, 'r1');
      const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
      assert.deepEqual(validate(schema, r.bodies[0]!.body), []);
      const status = json(await r.box.run(['server.status', '--json'], { env: r.env }));
      assert.equal(status.paused_run.id, id);
      assert.match((await r.box.run(['runs.show', id], { env: r.env })).stdout, /20-ask .*asked for a reboot: new kernel 6\.1/);
    }));

  it('while it waits: other runs exit 75 naming it, product.set works, server.resume in the same boot is 75; after the reboot it goes on once, with its own inputs, and commits at the end', () =>
    withRig(async (r) => {
      kernelTree(r);
      const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
      for (const args of [['server.provision'], ['server.mode', 'active'], ['product.upgrade', 'haproxy', '--to', '2.8'], ['server.refresh']]) {
        const x = await r.box.run(args, { env: r.env });
        assert.equal(x.code, 75, `${args.join(' ')}: ${x.stderr}`);
        assert.match(x.stderr, new RegExp(`run ${id} \\(provision\\) waits for the reboot configure/20-ask asked for`));
      }
      const set = await r.box.run(['product.set', 'haproxy.maxconn=9999'], { env: r.env });
      assert.equal(set.code, 0, set.stderr);
      const same = await r.box.run(['server.resume'], { env: r.env });
      assert.equal(same.code, 75);
      assert.match(same.stderr, /still the boot it paused in/);
      r.reboot();
      const resumed = await r.box.run(['server.resume', '--json'], { env: r.env });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(json(resumed).id, id);
      assert.equal(json(resumed).status, 'success');
      assert.match(resumed.stderr, /keeps the configuration it started with/);
      // Steps before the reboot did not run again; those after ran once, with the snapshot's settings.
      assert.deepEqual(readLines(r.log), [`10-before ${id}`, '20-ask maxconn=4096', '20-ask.check', 'reboot now', '30-after maxconn=4096 boot=boot-2', '10-post']);
      const j = r.journal(id);
      assert.equal(j.status, 'success');
      assert.deepEqual(j.boots.map((b: any) => b.boot_id), ['boot-1', 'boot-2']);
      assert.deepEqual(j.phases.find((p: any) => p.phase === 'configure').steps.map((s: any) => s.name), ['10-before', '20-ask', '30-after']);
      assert.ok(r.state().provisioned_at, 'committed at the end');
      assert.equal(r.state().paused_run, null);
      assert.equal(r.state().last_run.id, id);
      assert.equal(existsSync(join(r.box.stateDir, 'runs', `${id}.config.json`)), false, 'the snapshot goes with the run');
      assert.deepEqual(r.bodies.map((b) => [b.body.status, b.delivery]), [['rebooting', `${id}.reboot-1`], ['success', id]]);
      assert.match((await r.box.run(['runs.show', id], { env: r.env })).stdout, /boots: boot-1 .*, boot-2/);
      // Nothing waits now: server.resume (the unit at every boot) is a no-op.
      const nothing = await r.box.run(['server.resume'], { env: r.env });
      assert.equal(nothing.code, 0);
      assert.match(nothing.stdout, /no run waits for a reboot/);
      assert.equal((await r.box.run(['server.refresh'], { env: r.env })).code, 0, 'runs go on as usual');
    }));

  it("the refresh timer's server.refresh resumes a waiting run instead of starting a new one", () =>
    withRig(async (r) => {
      kernelTree(r);
      const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
      r.reboot();
      const refresh = await r.box.run(['server.refresh', '--json'], { env: r.env });
      assert.equal(refresh.code, 0, refresh.stderr);
      assert.equal(json(refresh).id, id);
      assert.equal(json(refresh).action, 'provision');
      assert.equal(readLines(r.log).filter((l) => l.startsWith('30-after')).length, 1);
    }));

  it('a resume runs every step this run has not handled, in plan order; one added or renamed to sort before the step that asked is refused (78), and the run still waits', () =>
    withRig(
      async (r) => {
        const dir = join(r.box.phasesDir, 'configure.d');
        script(join(dir, '10-a'), 'echo "10-a" >> "$LOG"');
        script(join(dir, '20-k'), '[ -e "$LOG.asked" ] || { touch "$LOG.asked"; echo "kernel" > "$BOOTSTRAP_REBOOT_FILE"; }; echo "20-k" >> "$LOG"');
        script(join(dir, '30-after'), 'echo "30-after" >> "$LOG"');
        const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
        // While it waits, the operator renames 30-after to 15-after and adds 12-new.
        renameSync(join(dir, '30-after'), join(dir, '15-after'));
        script(join(dir, '12-new'), 'echo "12-new" >> "$LOG"');
        r.reboot();
        const refused = await r.box.run(['server.resume'], { env: r.env });
        assert.equal(refused.code, 78, refused.stderr);
        assert.match(refused.stderr, new RegExp(`^bootstrap: run ${id} \\(provision\\) cannot resume: configure/12-new, configure/15-after sort before configure/20-k, where the run paused for its reboot, and never ran in it .*\\(put the phases back .* or end the run: bootstrap server.resume --abandon\\)\\n$`));
        assert.deepEqual(readLines(r.log), ['10-a', '20-k', 'reboot now'], 'nothing ran');
        assert.equal(r.state().paused_run.id, id, 'the run still waits');
        assert.equal(r.state().paused_run.resuming, null);
        assert.ok(existsSync(join(r.box.stateDir, 'runs', `${id}.config.json`)), 'with its snapshot');
        assert.equal(r.journal(id).status, 'rebooting');
        // Put after the step that asked, both run once, in plan order, and the journal lists them.
        renameSync(join(dir, '15-after'), join(dir, '30-after'));
        renameSync(join(dir, '12-new'), join(dir, '25-new'));
        script(join(r.box.phasesDir, 'post-configure.d', '10-post'), 'echo "10-post" >> "$LOG"');
        const resumed = await r.box.run(['server.resume', '--json'], { env: r.env });
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.equal(json(resumed).status, 'success');
        assert.deepEqual(readLines(r.log), ['10-a', '20-k', 'reboot now', '12-new', '30-after', '10-post']);
        const j = r.journal(id);
        assert.deepEqual(j.phases.find((p: any) => p.phase === 'configure').steps.map((s: any) => s.name), ['10-a', '20-k', '25-new', '30-after']);
        assert.deepEqual(j.phases.find((p: any) => p.phase === 'post-configure').steps.map((s: any) => s.name), ['10-post']);
      },
      { orc_lockfile: "''" },
    ));

  it('a step added while the run waited to a phase before the one that paused is refused too; --abandon still ends the run', () =>
    withRig(
      async (r) => {
        kernelTree(r);
        const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
        script(join(r.box.phasesDir, 'pre-configure.d', '50-new'), 'echo "50-new" >> "$LOG"');
        r.reboot();
        const refused = await r.box.run(['server.refresh'], { env: r.env });
        assert.equal(refused.code, 78, refused.stderr);
        assert.match(refused.stderr, /cannot resume: pre-configure\/50-new sorts before configure\/20-ask/);
        const abandoned = await r.box.run(['server.resume', '--abandon', '--json'], { env: r.env });
        assert.equal(abandoned.code, 1, abandoned.stderr);
        assert.equal(json(abandoned).id, id);
        assert.equal(r.state().paused_run, null);
        assert.ok(!readLines(r.log).includes('50-new'));
      },
      { orc_lockfile: "''" },
    ));

  it('server.resume --abandon ends it as failed (kind reboot): backouts per backout, error.d, a failure callback', () =>
    withRig(async (r) => {
      kernelTree(r);
      const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
      const x = await r.box.run(['server.resume', '--abandon', '--json'], { env: r.env });
      assert.equal(x.code, 1, x.stderr);
      assert.equal(json(x).failure.kind, 'reboot');
      assert.equal(json(x).id, id);
      assert.deepEqual(readLines(r.log).slice(4), ['20-ask.backout reboot', '10-before.backout reboot', 'error.d configure/20-ask reboot']);
      assert.equal(r.state().paused_run, null);
      assert.equal(r.state().provisioned_at, null);
      assert.equal(r.state().last_run.status, 'failure');
      assert.deepEqual(r.bodies.map((b) => b.body.status), ['rebooting', 'failure']);
      assert.equal(existsSync(join(r.box.stateDir, 'runs', `${id}.config.json`)), false);
    }));

  it('max_reboots: a run that asks once more than allowed fails (kind reboot), so asking on every boot cannot loop', () =>
    withRig(async (r) => {
      for (const n of ['10', '20', '30']) script(join(r.box.phasesDir, 'configure.d', `${n}-ask`), `echo "${n}-ask" >> "$LOG"; echo "reboot from ${n}" > "$BOOTSTRAP_REBOOT_FILE"`);
      script(join(r.box.phasesDir, 'error.d', '10-e'), 'echo "error.d $BOOTSTRAP_FAILED_STEP $BOOTSTRAP_FAILURE" >> "$LOG"');
      assert.equal(json(await r.box.run(['server.provision', '--json'], { env: r.env })).status, 'rebooting');
      r.reboot();
      assert.equal(json(await r.box.run(['server.resume', '--json'], { env: r.env })).status, 'rebooting');
      r.reboot();
      const last = await r.box.run(['server.resume', '--json'], { env: r.env });
      assert.equal(last.code, 1);
      assert.equal(json(last).failure.kind, 'reboot');
      assert.match(json(last).failure.message, /already rebooted 2 times \(\[phases\] max_reboots = 2\)/);
      assert.deepEqual(readLines(r.log), ['10-ask', 'reboot now', '20-ask', 'reboot now', '30-ask', 'error.d 30-ask reboot']);
      assert.equal(r.state().paused_run, null);
    }, { max_reboots: 2 }));

  it('a snapshot of the wrong shape is never used: the resume ends the run as failed, naming what is off (not a 70)', () =>
    withRig(async (r) => {
      kernelTree(r);
      const id = json(await r.box.run(['server.provision', '--json'], { env: r.env })).id;
      const snapshot = join(r.box.stateDir, 'runs', `${id}.config.json`);
      const doc = JSON.parse(readFileSync(snapshot, 'utf8'));
      doc.resume.intent.products = 5;
      writeFileSync(snapshot, JSON.stringify(doc));
      r.reboot();
      const resumed = await r.box.run(['server.resume', '--json'], { env: r.env });
      assert.equal(resumed.code, 1, resumed.stderr);
      assert.equal(json(resumed).status, 'failure');
      assert.match(resumed.stderr, new RegExp(`run ${id} cannot be resumed: its configuration snapshot .* is broken: resume\\.intent\\.products is a number, not an array; it ends as failed`));
      assert.doesNotMatch(resumed.stderr, /bug in bootstrap/);
      assert.equal(r.state().paused_run, null);
      assert.ok(!readLines(r.log).some((l) => l.startsWith('30-after')), 'nothing after the pause ran');
    }));

  it('a reboot command that fails fails the run (kind reboot): backouts, error.d, no pause left', () =>
    withRig(async (r) => {
      kernelTree(r);
      writeFileSync(join(r.box.dir, 'reboot-fails'), '');
      const x = await r.box.run(['server.provision', '--json'], { env: r.env });
      assert.equal(x.code, 1, x.stderr);
      assert.equal(json(x).failure.kind, 'reboot');
      assert.match(json(x).failure.message, /the reboot command failed: .*reboot now: exit 1/);
      assert.deepEqual(readLines(r.log).slice(3), ['reboot now', '20-ask.backout reboot', '10-before.backout reboot', 'error.d configure/20-ask reboot']);
      assert.equal(r.state().paused_run, null);
      assert.equal((await r.box.run(['server.provision'], { env: r.env })).code, 0, 'nothing waits');
      assert.deepEqual(readdirSync(join(r.box.stateDir, 'runs')).filter((n) => n.endsWith('.config.json')), []);
    }));

  it('the reboot command is bounded like a step: over when it exits (what it left is ended), its whole tree killed at script_timeout', () =>
    withRig(async (r) => {
      kernelTree(r);
      const pids = join(r.box.dir, 'pids');
      // Exits at once, leaving a background child (holding its output) and a setsid daemon.
      const quick = script(join(r.box.dir, 'reboot-quick'), `sleep 300 & echo $! >> "${pids}"; setsid sleep 300 & echo $! >> "${pids}"; echo rebooting`);
      writeFileSync(r.box.config, iniWith({ reboot_command: quick, script_timeout: 60, kill_grace: 1 }));
      const x = await r.box.run(['server.provision', '--json'], { env: r.env, timeoutMs: 30_000 });
      assert.equal(x.code, 0, x.stderr);
      assert.equal(json(x).status, 'rebooting');
      const left = readLines(pids).map(Number);
      assert.equal(left.length, 2);
      for (const pid of left) assert.ok(await ended(pid, 5000), `pid ${pid}, left by the reboot command, was ended`);
      // Never exits: its tree (a child and a setsid daemon) is killed at script_timeout, and the run fails (kind reboot).
      await r.box.run(['server.resume', '--abandon'], { env: r.env });
      writeFileSync(pids, '');
      const slow = script(join(r.box.dir, 'reboot-slow'), `trap '' TERM; sleep 300 & echo $! >> "${pids}"; setsid sleep 300 & echo $! >> "${pids}"; while :; do sleep 1; done`);
      writeFileSync(r.box.config, iniWith({ reboot_command: slow, script_timeout: 2, kill_grace: 1 }));
      rmSync(`${r.log}.asked`);
      const y = await r.box.run(['server.provision', '--json'], { env: r.env, timeoutMs: 30_000 });
      assert.equal(y.code, 1, y.stderr);
      assert.equal(json(y).failure.kind, 'reboot');
      assert.match(json(y).failure.message, /the reboot command failed: .*reboot-slow: timed out after 2\.0 s \(killed\)/);
      const slowLeft = readLines(pids).map(Number);
      assert.equal(slowLeft.length, 2);
      for (const pid of slowLeft) assert.ok(await ended(pid, 5000), `pid ${pid}, started by the slow reboot command, was ended`);
    }));

  it('a non-zero exit is a failure whatever the step wrote; --dry-run says which steps may ask', () =>
    withRig(async (r) => {
      kernelTree(r);
      script(join(r.box.phasesDir, 'configure.d', '05-bad'), 'echo "please" > "$BOOTSTRAP_REBOOT_FILE"; exit 3');
      const dry = await r.box.run(['server.provision', '--dry-run'], { env: r.env });
      assert.match(dry.stdout, /run  configure\/20-ask {2}\(may ask for a reboot\)/);
      assert.doesNotMatch(dry.stdout, /30-after {2}\(may ask/);
      const x = await r.box.run(['server.provision', '--json'], { env: r.env });
      assert.equal(x.code, 1);
      assert.equal(json(x).failure.kind, 'exit');
      assert.ok(!readLines(r.log).includes('reboot now'));
      assert.ok(!r.state().paused_run);
    }));
});

// SIGKILL at random moments of a pause and of a resume (seeded): afterwards, and after whatever
// the next server.resume does, no step ran twice in a run, the run ends once (journal and one
// final callback agree), no step after the one that asked ran before the reboot, and nothing is
// left waiting that should not.
const seed0 = Number(process.env['FAULT_SEED'] ?? 20261123);
let seed = seed0;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const summary = { trials: 0, failures: [] as string[] };
const rebootTrials = trials(24);

describe('reboot and resume under SIGKILL', () => {
  after(() => console.log(`reboot faults: ${summary.trials} trials (seed ${seed0}), ${summary.failures.length} failures found${summary.failures.length ? `: ${summary.failures.slice(0, 5).join('; ')}` : ''}`));

  it(`${rebootTrials} trials: killed during the pause or during the resume`, async () => {
    for (let trial = 1; trial <= rebootTrials; trial++) {
      summary.trials++;
      await withRig(async (r) => {
        const dir = join(r.box.phasesDir, 'configure.d');
        script(join(dir, '10-before'), 'echo "10-before" >> "$LOG"; sleep 0.05');
        script(join(dir, '20-ask'), 'echo "20-ask" >> "$LOG"; [ -e "$LOG.asked" ] || { touch "$LOG.asked"; echo "kernel" > "$BOOTSTRAP_REBOOT_FILE"; }; sleep 0.05');
        script(join(dir, '30-after'), 'echo "30-after" >> "$LOG"; sleep 0.1');
        script(join(dir, '40-last'), 'echo "40-last" >> "$LOG"; sleep 0.05');
        const killDuringResume = trial % 2 === 0;
        const first = r.box.start(['server.provision'], { env: r.env });
        const firstDone = collect(first, 60_000);
        const t1 = killDuringResume ? null : setTimeout(() => first.kill('SIGKILL'), Math.floor(random() * 700));
        await firstDone;
        if (t1) clearTimeout(t1);
        const beforeReboot = readLines(r.log);
        const what = `trial ${trial} (${killDuringResume ? 'resume' : 'pause'})`;
        const check = (ok: boolean, message: string) => {
          if (!ok) summary.failures.push(`${what}: ${message}`);
          assert.ok(ok, `${what}: ${message}`);
        };
        check(!beforeReboot.includes('30-after') || !r.state().paused_run, 'a step after the one that asked ran before the reboot');
        await new Promise((res) => setTimeout(res, 300)); // the killed run's last step ends
        r.reboot();
        if (killDuringResume) {
          const second = r.box.start(['server.resume'], { env: r.env });
          const secondDone = collect(second, 60_000);
          const t2 = setTimeout(() => second.kill('SIGKILL'), Math.floor(random() * 600));
          await secondDone;
          clearTimeout(t2);
          await new Promise((res) => setTimeout(res, 300));
        }
        // Whatever happened: the next server.resume settles it (takes a dead lock over, resumes a pause).
        for (let i = 0; i < 3 && r.state().paused_run !== null; i++) {
          const again = await r.box.run(['server.resume'], { env: r.env });
          check([0, 1, 75].includes(again.code!), `server.resume exited ${again.code}: ${again.stderr}`);
          if (again.code === 75) r.reboot();
        }
        await r.box.run(['server.resume'], { env: r.env }); // settles a dead lock left by the last kill
        await r.box.run(['callback.flush'], { env: r.env });
        const s = r.state();
        check(!s.paused_run, `still paused: ${JSON.stringify(s.paused_run)}`);
        const lines = readLines(r.log).filter((l) => !l.startsWith('reboot'));
        for (const step of ['10-before', '20-ask', '30-after', '40-last']) check(lines.filter((l) => l === step).length <= 1, `${step} ran ${lines.filter((l) => l === step).length} times: ${lines.join(', ')}`);
        const runs = readdirSync(join(r.box.stateDir, 'runs')).filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}\.json$/.test(n));
        check(runs.length <= 1, `${runs.length} journals`);
        check(readdirSync(join(r.box.stateDir, 'runs')).filter((n) => n.endsWith('.config.json') || n.endsWith('.changes')).length === 0, 'a snapshot or changes dir outlived its run');
        if (runs.length === 1) {
          const j = JSON.parse(readFileSync(join(r.box.stateDir, 'runs', runs[0]!), 'utf8'));
          check(j.status === 'success' || j.status === 'failure', `journal status ${j.status}`);
          // Delivery is at least once (killed after the receiver answered, before the outbox file
          // went, it is sent again, with the same X-Bootstrap-Delivery): one final callback per run
          // once deduplicated, and each copy says what the journal says.
          const finals = r.bodies.filter((b) => b.body.id === j.id && b.body.status !== 'rebooting');
          check(new Set(finals.map((b) => b.delivery)).size === 1 && finals.every((b) => b.body.status === j.status), `final callbacks ${JSON.stringify(finals.map((b) => [b.delivery, b.body.status]))} for a ${j.status} journal`);
          check(s.last_run?.id === j.id && s.last_run.status === j.status, 'last_run agrees with the journal');
          if (j.status === 'success') check(lines.join(',') === '10-before,20-ask,30-after,40-last', `a success ran ${lines.join(',')}`);
        }
      });
    }
  });
});
