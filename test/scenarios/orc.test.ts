// Side by side with Debian's os-refresh-config (python3-os-refresh-config: os-refresh-config and
// dib-run-parts) on trees that exercise each behaviour a migrating user relies on: the same tree,
// the same environment, and what the steps recorded compared line by line.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin, ended, json, type Sandbox } from '../helpers/cli.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';

const haveOrc = spawnSync('sh', ['-c', 'command -v os-refresh-config && command -v dib-run-parts']).status === 0;
const skip = haveOrc ? false : 'os-refresh-config is not installed (apt-get install python3-os-refresh-config; .ci/run does)';

interface Side {
  lines: string[];
  ms: number;
  code: number | null;
  stderr: string;
}

/** Runs the tree under os-refresh-config and under bootstrap, each recording into its own log. */
function bothSides(box: Sandbox, extraArgs: { orc?: string[]; bootstrap?: string[] } = {}): { orc: Side; bootstrap: Side } {
  const run = (name: string, argv: string[]): Side => {
    const log = join(box.dir, `${name}.log`);
    const state = join(box.dir, `${name}-state`);
    mkdirSync(state, { recursive: true });
    // Output to a file, as under systemd: a pipe would make the caller wait for a background
    // child that keeps it open, whichever tool runs it.
    const out = join(box.dir, `${name}.out`);
    const fd = openSync(out, 'w');
    const t0 = Date.now();
    const r = spawnSync(argv[0]!, argv.slice(1), {
      env: { ...box.env, OS_REFRESH_CONFIG_BASE_DIR: box.phasesDir, BOOTSTRAP_PHASES_DIR: '', LOG: log, STEPSTATE: state },
      stdio: ['ignore', fd, fd],
      timeout: 60_000,
    });
    const ms = Date.now() - t0;
    closeSync(fd);
    return { lines: readLines(log), ms, code: r.status, stderr: readFileSync(out, 'utf8') };
  };
  return {
    orc: run('orc', ['os-refresh-config', '--lockfile', join(box.dir, 'orc.lock'), ...(extraArgs.orc ?? [])]),
    bootstrap: run('bootstrap', [process.execPath, bin, 'server.provision', ...(extraArgs.bootstrap ?? [])]),
  };
}

describe('os-refresh-config, side by side', { skip }, () => {
  it(
    'environment.d order (dib-run-parts\': 10-b, 5-a, set_var.bash), re-sourced before each phase, its output kept out of the environment; /dev/stderr writable; $0 absolute',
    withBox(iniWith(), async (box) => {
      const env = join(box.phasesDir, 'environment.d');
      mkdirSync(env, { recursive: true });
      writeFileSync(join(env, '5-a'), 'export ORDER="${ORDER-},5-a"\n');
      writeFileSync(join(env, '10-b'), 'echo hi-from-env\nexport ORDER="${ORDER-},10-b"\n');
      writeFileSync(join(env, 'set_var.bash'), 'export ORDER="${ORDER-},set_var.bash"\nif [ -f "$STEPSTATE/written" ]; then export WRITTEN="$(cat "$STEPSTATE/written")"; fi\n');
      writeFileSync(join(box.phasesDir, 'common.sh'), 'COMMON=yes\n');
      script(join(box.phasesDir, 'configure.d', '10-stderr'), 'echo to-stderr >/dev/stderr || exit 1\necho to-stdout | tee /dev/stderr >/dev/null || exit 1\necho stderr-ok >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '20-order'), 'echo "order=$ORDER path=${PATH:+set}" >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '30-dollar0'), 'cd /\n. "$(dirname "$0")/../common.sh"\necho "common=$COMMON" >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '40-write'), 'echo from-configure > "$STEPSTATE/written"');
      script(join(box.phasesDir, 'post-configure.d', '10-read'), 'echo "written=${WRITTEN-none}" >> "$LOG"');
      const { orc, bootstrap } = bothSides(box);
      assert.equal(orc.code, 0, orc.stderr);
      assert.equal(bootstrap.code, 0, bootstrap.stderr);
      assert.deepEqual(orc.lines, ['stderr-ok', 'order=,10-b,5-a,set_var.bash path=set', 'common=yes', 'written=from-configure']);
      assert.deepEqual(bootstrap.lines, orc.lines);
      assert.match(bootstrap.stderr, /environment\.d \| hi-from-env/);
    }),
  );

  it(
    'a step that leaves a child holding its output does not hold the run (bandersnatch): both end in about the same time',
    withBox(iniWith(), async (box) => {
      // The child ends only when the test releases it, after both sides returned: a side that
      // waited for it would run into bothSides' 60 s timeout (a fixed 4 s child against a 3.5 s
      // bound failed on a loaded machine, where os-refresh-config alone took longer).
      const release = join(box.dir, 'release');
      script(join(box.phasesDir, 'post-configure.d', '50-mirror'), `(while [ ! -e '${release}' ]; do sleep 0.1; done; echo mirrored >> "$LOG.late") &\necho started >> "$LOG"`);
      try {
        const { orc, bootstrap } = bothSides(box);
        assert.equal(orc.code, 0);
        assert.equal(bootstrap.code, 0, bootstrap.stderr);
        assert.deepEqual(bootstrap.lines, orc.lines);
        assert.ok(orc.ms < 30_000 && bootstrap.ms < 30_000, `orc ${orc.ms} ms, bootstrap ${bootstrap.ms} ms`);
      } finally {
        writeFileSync(release, '');
        // os-refresh-config leaves the child running: let it write and end before the box is
        // removed (else the removal races its write: ENOTEMPTY). Bounded: 10 s.
        for (let i = 0; i < 100 && !existsSync(join(box.dir, 'orc.log.late')); i++) await new Promise((r) => setTimeout(r, 100));
        await new Promise((r) => setTimeout(r, 200));
      }
    }),
  );

  it(
    'a timeout ends every descendant, a setsid child included, under both',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-hang'), 'setsid sh -c \'echo $$ >> "$LOG"; exec sleep 60\' &\nsleep 60');
      const { orc, bootstrap } = bothSides(box, { orc: ['--timeout', '2'], bootstrap: ['--timeout', '2'] });
      assert.notEqual(orc.code, 0);
      assert.equal(bootstrap.code, 1);
      for (const side of [orc, bootstrap]) {
        const pid = Number(side.lines[0]);
        assert.ok(pid > 0);
        assert.ok(await ended(pid, 3000), `setsid child ${pid} still running`);
      }
    }),
  );

  it(
    'OS_REFRESH_CONFIG_BASE_DIR names the tree (after --phases-dir and BOOTSTRAP_PHASES_DIR)',
    withBox(iniWith(), async (box) => {
      const r = spawnSync(process.execPath, [bin, 'phases.list', '--json'], { env: { ...box.env, BOOTSTRAP_PHASES_DIR: '', OS_REFRESH_CONFIG_BASE_DIR: '/nonexistent/orc-tree' }, encoding: 'utf8' });
      assert.equal(json({ code: r.status, stdout: r.stdout, stderr: r.stderr }).base_dir, '/nonexistent/orc-tree');
      const flagged = spawnSync(process.execPath, [bin, 'phases.list', '--json'], { env: { ...box.env, OS_REFRESH_CONFIG_BASE_DIR: '/nonexistent/orc-tree' }, encoding: 'utf8' });
      assert.equal(JSON.parse(flagged.stdout).base_dir, box.phasesDir);
    }),
  );

  it(
    'while os-refresh-config holds its lock a run exits 75; while a run holds it, os-refresh-config cannot start',
    withBox(iniWith({ orc_lockfile: 'orc.lock' }), async (box) => {
      const lockfile = join(box.dir, 'orc.lock');
      writeFileSync(lockfile, '');
      // The slow step says when it has begun: by then its runner holds the lock. (Probing the
      // lock with flock took it for a moment, and an os-refresh-config starting in that moment
      // found it held and gave up, so the run that followed was never blocked.)
      // It holds the lock until the test has tried the other side ($RELEASE; 2 min at most): a
      // fixed 2 s could end before the other side (a Node or a Python start) had tried, under load.
      script(join(box.phasesDir, 'configure.d', '10-slow'), 'if [ -f "$SLOW" ]; then : > "$STARTED"; i=0; while [ ! -e "$RELEASE" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; fi; echo ran >> "$LOG"');
      const slow = join(box.dir, 'slow');
      writeFileSync(slow, '');
      const log = join(box.dir, 'log');
      const begun = async (marker: string) => {
        for (let i = 0; i < 400 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 25));
        assert.ok(existsSync(marker), `${marker}: the slow step never began`);
      };
      // os-refresh-config first, holding the lock for its slow step.
      const orcStarted = join(box.dir, 'orc-started');
      const orcRelease = join(box.dir, 'orc-release');
      const orc = spawn('os-refresh-config', ['--lockfile', lockfile], { env: { ...box.env, OS_REFRESH_CONFIG_BASE_DIR: box.phasesDir, SLOW: slow, LOG: log, STARTED: orcStarted, RELEASE: orcRelease }, stdio: 'ignore' });
      const orcClosed = new Promise((r) => orc.once('close', r));
      await begun(orcStarted);
      const blocked = await box.run(['server.provision'], { env: { LOG: log } });
      writeFileSync(orcRelease, '');
      assert.equal(blocked.code, 75, blocked.stderr);
      assert.match(blocked.stderr, /os-refresh-config .* is running: it holds .*orc\.lock/);
      await orcClosed;
      assert.equal(orc.exitCode, 0);
      // Now bootstrap first: os-refresh-config finds the lock held.
      const oursStarted = join(box.dir, 'ours-started');
      const oursRelease = join(box.dir, 'ours-release');
      const ours = box.start(['server.provision'], { env: { LOG: log, SLOW: slow, STARTED: oursStarted, RELEASE: oursRelease } });
      const oursClosed = new Promise((r) => ours.once('close', r));
      await begun(oursStarted);
      const theirs = spawnSync('os-refresh-config', ['--lockfile', lockfile], { env: { ...box.env, OS_REFRESH_CONFIG_BASE_DIR: box.phasesDir, LOG: log }, encoding: 'utf8', timeout: 120_000 });
      writeFileSync(oursRelease, '');
      assert.notEqual(theirs.status, 0);
      assert.match(theirs.stderr, /Could not lock/);
      await oursClosed;
      assert.equal(ours.exitCode, 0);
      rmSync(slow);
      assert.ok(existsSync(lockfile));
    }),
  );
});
