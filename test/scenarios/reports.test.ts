// What steps report (changes, reboot requests) is never lost and never read as "nothing": not to
// a full /dev/shm or state filesystem (filled by nobody, uid 65534), not to a retry; and what
// --detailed-exitcodes says of it. The full filesystems are small tmpfs mounted in a private
// mount namespace of the agent's process only (`unshare --mount`): the machine's /dev/shm and
// disks are never filled, and the mounts go with the namespace, whatever happens.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json, type Sandbox } from '../helpers/cli.js';
import { iniWith as iniWithPhases, readLines, script, withBox } from '../helpers/phases.js';

/** The tests' ini: never the machine's os-refresh-config lock (tests touch no machine path). */
const iniWith = (phases: Record<string, string | number> = {}) => iniWithPhases({ orc_lockfile: "''", ...phases });

const nobody = 'setpriv --reuid=65534 --regid=65534 --clear-groups';

/**
 * The agent runs in a mount namespace of its own where /dev/shm is a 1 MiB tmpfs (mode 1777, as
 * on a server) and, with `stateFs`, the state dir is on another (1 MiB, a 1777 `pub` dir beside
 * it, as /var/tmp beside /var/bootstrap). `fillShm`: nobody fills /dev/shm before the agent starts.
 */
function inNamespace(box: Sandbox, o: { fillShm?: boolean; stateFs?: string }): string[] {
  const lines = ['set -e', 'mount -t tmpfs -o size=1m,mode=1777 bootstrap-test-shm /dev/shm'];
  if (o.stateFs) lines.push(`mount -t tmpfs -o size=1m,nr_inodes=400,mode=0755 bootstrap-test-state '${o.stateFs}'`, `mkdir -m 1777 '${o.stateFs}/pub'`);
  if (o.fillShm) lines.push(`${nobody} sh -c 'cat /dev/zero > /dev/shm/fill' 2>/dev/null || true`);
  lines.push('exec "$@"');
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', lines.join('\n'), 'sh'];
}

/** A dir for a tmpfs state filesystem that nobody can reach (the sandbox is 0700). */
function stateFsDir(box: Sandbox): string {
  const dir = join(box.dir, 'fs');
  mkdirSync(dir);
  chmodSync(box.dir, 0o711);
  return dir;
}

/** A step's shell lines that fill the given dirs as nobody (ENOSPC ends each cat). */
const fill = (dirs: string) => `for d in ${dirs}; do ${nobody} sh -c "cat /dev/zero > \\"\\$1/fill\\"" sh "$d" 2>/dev/null; done`;

describe('reports on a full filesystem', () => {
  it(
    'nobody fills /dev/shm: a change reported with `echo >>` is recorded (exit 2), a reboot request pauses the run, nothing after it runs',
    withBox('', async (box, log) => {
      const reboot = script(join(box.dir, 'reboot'), `echo "reboot" >> "${log}"`);
      writeFileSync(box.config, iniWith({ reboot_command: reboot }));
      const env = { LOG: log };
      const dir = join(box.phasesDir, 'configure.d');
      // The step proves the scenario: /dev/shm is full for it too.
      script(join(dir, '10-change'), 'echo x 2>/dev/null > /dev/shm/probe-$$ || echo "shm full" >> "$LOG"\necho "rewrote /etc/x" >> "$BOOTSTRAP_CHANGES"');
      const first = await box.run(['server.provision', '--detailed-exitcodes', '--json'], { env, prefix: inNamespace(box, { fillShm: true }) });
      assert.equal(first.code, 2, first.stderr);
      assert.deepEqual(json(first).changes, [{ phase: 'configure', step: '10-change', changes: ['rewrote /etc/x'] }]);
      assert.deepEqual(readLines(log), ['shm full']);
      script(join(dir, '20-ask'), 'echo "new kernel" > "$BOOTSTRAP_REBOOT_FILE"; exit 0');
      script(join(dir, '30-after'), 'echo "30-after" >> "$LOG"');
      const second = await box.run(['server.refresh', '--json'], { env, prefix: inNamespace(box, { fillShm: true }) });
      assert.equal(json(second).status, 'rebooting', second.stderr);
      assert.deepEqual(json(second).reboots.map((r: any) => [r.step, r.reason]), [['20-ask', 'new kernel']]);
      assert.deepEqual(readLines(log), ['shm full', 'shm full', 'reboot'], '30-after did not run');
    }),
  );

  it(
    "the state dir's filesystem is full after a step (nobody filled it): the step fails, what it reported may be lost, nothing after it runs",
    withBox(iniWith(), async (box, log) => {
      const fs = stateFsDir(box);
      const env = { LOG: log, BOOTSTRAP_STATE_DIR: join(fs, 'state'), PUBS: `/dev/shm ${fs}/pub` };
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '10-fill'), `${fill('$PUBS')}\necho "rewrote /etc/y" >> "$BOOTSTRAP_CHANGES" 2>/dev/null\necho "kernel" > "$BOOTSTRAP_REBOOT_FILE" 2>/dev/null\nexit 0`);
      script(join(dir, '20-after'), 'echo "20-after" >> "$LOG"');
      // error.d makes room again, so that the outcome can be recorded.
      script(join(box.phasesDir, 'error.d', '10-room'), 'for d in $PUBS; do rm -f "$d/fill"; done; echo "error.d $BOOTSTRAP_FAILED_STEP" >> "$LOG"');
      const r = await box.run(['server.provision', '--detailed-exitcodes', '--json'], { env, prefix: inNamespace(box, { stateFs: fs }) });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const out = json(r);
      assert.equal(out.status, 'failure');
      assert.equal(out.failure.step, '10-fill');
      assert.match(out.failure.message, /had no room left: what it reported \(changes, a reboot request\) may be lost/);
      assert.deepEqual(out.counts, { changed: 0, unchanged: 0, skipped: 0, failed: 1 });
      assert.deepEqual(readLines(log), ['error.d 10-fill']);
    }),
  );

  it(
    "no inode left on the state dir's filesystem (nobody took them): the next step does not run without its changes file, and fails",
    withBox(iniWith(), async (box, log) => {
      const fs = stateFsDir(box);
      const env = { LOG: log, BOOTSTRAP_STATE_DIR: join(fs, 'state'), PUB: `${fs}/pub` };
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '05-first'), 'echo "05-first" >> "$LOG"'); // the probe file exists after it: blocks are left, inodes are not
      script(join(dir, '10-take'), `${nobody} sh -c 'i=0; while [ $i -lt 1000 ] && : > "$PUB/$i"; do i=$((i + 1)); done' 2>/dev/null; echo "10-take" >> "$LOG"`);
      script(join(dir, '20-next'), 'echo "20-next" >> "$LOG"');
      script(join(box.phasesDir, 'error.d', '10-room'), 'rm -rf "$PUB"/*; echo "error.d $BOOTSTRAP_FAILED_STEP" >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env, prefix: inNamespace(box, { stateFs: fs }) });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(json(r).failure.step, '20-next');
      assert.match(json(r).failure.message, /^not run: its BOOTSTRAP_CHANGES file could not be created in .*\(is that filesystem full\?\)$/);
      assert.deepEqual(readLines(log), ['05-first', '10-take', 'error.d 20-next'], 'error.d ran, without a changes file');
    }),
  );

  it(
    'a reboot request whose reason could not be written (the filesystem was full a moment) still pauses the run',
    withBox('', async (box, log) => {
      const fs = stateFsDir(box);
      const reboot = script(join(box.dir, 'reboot'), `echo "reboot" >> "${log}"`);
      writeFileSync(box.config, iniWith({ reboot_command: reboot }));
      const env = { LOG: log, BOOTSTRAP_STATE_DIR: join(fs, 'state'), PUBS: `/dev/shm ${fs}/pub` };
      const dir = join(box.phasesDir, 'configure.d');
      // Filled, the write fails, freed: what an attacker who times it does.
      script(join(dir, '10-ask'), `${fill('$PUBS')}\necho "kernel" > "$BOOTSTRAP_REBOOT_FILE" 2>/dev/null || echo "write failed" >> "$LOG"\nfor d in $PUBS; do rm -f "$d/fill"; done\nexit 0`);
      script(join(dir, '20-after'), 'echo "20-after" >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env, prefix: inNamespace(box, { stateFs: fs }) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(json(r).status, 'rebooting');
      assert.deepEqual(json(r).reboots.map((x: any) => [x.step, x.reason]), [['10-ask', 'no reason given']]);
      assert.deepEqual(readLines(log), ['write failed', 'reboot'], '20-after did not run');
    }),
  );
});

describe('reported changes and exit codes', () => {
  it(
    'a change reported by an attempt that failed and was retried is part of the run (exit 2 under --detailed-exitcodes), and so is its check’s',
    withBox(iniWith({ retries: 1, retry_delay: 0 }), async (box, log) => {
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '10-flaky'), `if [ ! -e "$LOG.tried" ]; then touch "$LOG.tried"; echo "created /etc/z" >> "$BOOTSTRAP_CHANGES"; exit 1; fi\necho "second" >> "$LOG"`);
      script(join(dir, '20-check-flaky'), 'echo "20 ran" >> "$LOG"');
      script(join(dir, '20-check-flaky.check'), `if [ ! -e "$LOG.checked" ]; then touch "$LOG.checked"; echo "restarted z" >> "$BOOTSTRAP_CHANGES"; exit 1; fi`);
      const r = await box.run(['server.provision', '--detailed-exitcodes', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 2, r.stderr);
      const out = json(r);
      assert.equal(out.status, 'success');
      assert.deepEqual(out.counts, { changed: 2, unchanged: 0, skipped: 0, failed: 0 });
      assert.deepEqual(out.changes, [
        { phase: 'configure', step: '10-flaky', changes: ['created /etc/z'] },
        { phase: 'configure', step: '20-check-flaky', changes: ['restarted z'] },
      ]);
      assert.deepEqual(readLines(log), ['second', '20 ran', '20 ran']);
    }),
  );

  it(
    'a run that pauses for a reboot exits 0, and 2 under --detailed-exitcodes (changes reported or not); its resume exits 2 for the changes made before the reboot',
    withBox('', async (box, log) => {
      const reboot = script(join(box.dir, 'reboot'), `echo "reboot" >> "${log}"`);
      writeFileSync(box.config, iniWith({ reboot_command: reboot }));
      const boot = join(box.dir, 'boot_id');
      writeFileSync(boot, 'boot-1\n');
      const env = { LOG: log, BOOTSTRAP_TEST_BOOT_ID_FILE: boot };
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '10-kernel'), `[ -e "$LOG.asked" ] && exit 0; touch "$LOG.asked"; echo "installed kernel 6.1" >> "$BOOTSTRAP_CHANGES"; echo "kernel 6.1" > "$BOOTSTRAP_REBOOT_FILE"`);
      script(join(dir, '20-after'), 'echo "20-after" >> "$LOG"');
      const paused = await box.run(['server.provision', '--detailed-exitcodes', '--json'], { env });
      assert.equal(json(paused).status, 'rebooting', paused.stderr);
      assert.deepEqual(json(paused).counts, { changed: 1, unchanged: 0, skipped: 0, failed: 0 });
      assert.equal(paused.code, 2, 'something changed: not 0');
      writeFileSync(boot, 'boot-2\n');
      const resumed = await box.run(['server.resume', '--detailed-exitcodes', '--json'], { env });
      assert.equal(json(resumed).status, 'success', resumed.stderr);
      assert.equal(resumed.code, 2, 'the run changed things before its reboot');
      // Without the flag a pause exits 0; with it, a pause that reported nothing is 2 all the same.
      script(join(dir, '30-ask'), `[ -e "$LOG.asked30" ] && exit 0; touch "$LOG.asked30"; echo "firmware" > "$BOOTSTRAP_REBOOT_FILE"`);
      writeFileSync(`${log}.asked`, '');
      const plain = await box.run(['server.refresh', '--json'], { env });
      assert.equal(json(plain).status, 'rebooting');
      assert.equal(plain.code, 0);
      assert.equal((await box.run(['server.resume', '--abandon'], { env })).code, 1);
      writeFileSync(boot, 'boot-3\n');
      rmSync(`${log}.asked30`);
      const quiet = await box.run(['server.refresh', '--detailed-exitcodes', '--json'], { env });
      assert.equal(json(quiet).status, 'rebooting');
      assert.deepEqual(json(quiet).counts.changed, 0);
      assert.equal(quiet.code, 2);
    }),
  );
});
