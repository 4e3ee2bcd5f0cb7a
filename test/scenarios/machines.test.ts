// An operator's first day, from the adversarial trial of issue 20: files of the wrong shape, a
// reader that closes the pipe, an old Node, a log file in a dir that does not exist, and the
// machine's own os-refresh-config lock. None of these may end in a 70 (a bug) or a stack trace.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asNobody, bin, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { iniWith, journals, script, withBox } from '../helpers/phases.js';
import { nodeBinary, nodeVersions } from '../helpers/node-bins.js';

/** Provisions once with a one-step tree; returns the run id. */
async function provisioned(box: Sandbox): Promise<string> {
  script(join(box.phasesDir, 'configure.d', '10-a'), 'echo hello');
  const r = await box.run(['server.provision', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return json(r).id;
}

/** Rewrites one journal with `change` applied to its parsed content. */
function breakJournal(box: Sandbox, id: string, change: (j: any) => void): string {
  const file = join(box.stateDir, 'runs', `${id}.json`);
  const j = JSON.parse(readFileSync(file, 'utf8'));
  change(j);
  writeFileSync(file, JSON.stringify(j));
  return file;
}

describe('operator: files of the wrong shape are reported and skipped, never a 70', () => {
  const breakages: [string, (j: any) => void, RegExp][] = [
    ['"phases": null', (j) => (j.phases = null), /phases is null, not an array/],
    ['a null step', (j) => (j.phases[1].steps[0] = null), /phases\[1\]\.steps\[0\] is null, not an object/],
    ['name: 5', (j) => (j.phases[1].steps[0].name = 5), /phases\[1\]\.steps\[0\]\.name is a number, not a string/],
    ['a check that is a string', (j) => (j.phases[1].steps[0].check = 'x'), /steps\[0\]\.check is a string, not an object/],
    ['backouts missing', (j) => delete j.backouts, /backouts is missing, not an array/],
    ['another run\'s id', (j) => (j.id = '20200101T000000Z-000000'), /its id is not the \d{8}T\d{6}Z-[0-9a-f]{6} of its name/],
  ];
  for (const [what, change, problem] of breakages) {
    it(
      `a journal with ${what}: runs.list and runs.blame --runs leave it out with a warning; runs.show and runs.blame name it (65)`,
      withBox(iniWith(), async (box) => {
        const bad = await provisioned(box);
        const good = await provisioned(box);
        const file = breakJournal(box, bad, change);
        const list = await box.run(['runs.list', '--json']);
        assert.equal(list.code, 0, list.stderr);
        assert.deepEqual(json(list).runs.map((r: any) => r.id), [good]);
        assert.match(list.stderr, new RegExp(`run journal ${file} is broken: .*left out`));
        assert.match(list.stderr, problem);
        const human = await box.run(['runs.list']);
        assert.equal(human.code, 0, human.stderr);
        assert.match(human.stdout, new RegExp(good));
        for (const args of [['runs.show', bad], ['runs.blame', bad]]) {
          const r = await box.run(args);
          assert.equal(r.code, 65, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, /^bootstrap: run journal .* is broken: /);
          assert.match(r.stderr, problem);
          assert.doesNotMatch(r.stderr, /bug in bootstrap/);
        }
        const blame = await box.run(['runs.blame', '--runs', '5', '--json']);
        assert.equal(blame.code, 0, blame.stderr);
        assert.equal(json(blame).runs, 1);
        // The next run is not disturbed by it.
        assert.equal((await box.run(['server.refresh'])).code, 0);
      }),
    );
  }

  it(
    'a state.json of the wrong shape is named by the kind of what is off, never its value (it may be a secret)',
    withBox(iniWith(), async (box) => {
      const secret = 'TopSecretQ77';
      assert.equal((await box.run(['product.set', `haproxy.stats_password=${secret}`])).code, 0);
      const file = join(box.stateDir, 'state.json');
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      doc.products.haproxy.settings.stats_password = [secret];
      writeFileSync(file, JSON.stringify(doc));
      for (const args of [['server.status'], ['server.status', '--json'], ['product.get']]) {
        const r = await box.run(args);
        assert.equal(r.code, 73, r.stderr);
        assert.match(r.stdout + r.stderr, /products\.haproxy\.settings\.stats_password is an array, not a string/);
        assert.doesNotMatch(r.stdout + r.stderr, new RegExp(secret));
      }
    }),
  );

  it(
    'a lock record of the wrong shape is no holder: server.status and a run go on',
    withBox(iniWith(), async (box) => {
      await provisioned(box);
      writeFileSync(join(box.stateDir, 'run.lock'), JSON.stringify({ pid: 'x', host: 5, command: null }));
      const status = await box.run(['server.status', '--json']);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(json(status).lock.state, 'free');
      const r = await box.run(['server.refresh']);
      assert.equal(r.code, 0, r.stderr);
    }),
  );
});

/**
 * Runs `bootstrap ARGS` with its standard output on a pipe whose reader is already gone, as
 * `bootstrap … | true` does when `true` wins the race: deterministic, with a FIFO opened by the
 * shell for reading and writing, then closed for reading before the agent starts.
 */
function withClosedStdout(box: Sandbox, args: string[]): { code: number; stderr: string } {
  const fifo = join(box.dir, 'out.fifo');
  rmSync(fifo, { force: true });
  execFileSync('mkfifo', [fifo]);
  const cmd = `exec 4<>"$FIFO"; exec 5>"$FIFO"; exec 4<&-; "$NODE" "$BIN" "$@" >&5 2>"$ERR"; echo $? > "$RC"`;
  const err = join(box.dir, 'err');
  const rc = join(box.dir, 'rc');
  const r = spawnSync('bash', ['-c', cmd, 'bash', ...args], { env: { ...box.env, FIFO: fifo, NODE: process.execPath, BIN: bin, ERR: err, RC: rc }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return { code: Number(readFileSync(rc, 'utf8').trim()), stderr: readFileSync(err, 'utf8') };
}

describe('operator: a reader that closes the pipe', () => {
  it(
    'server.status --json | true: no EPIPE stack trace, exit 0; a run whose reader left goes on to its end',
    withBox(iniWith(), async (box) => {
      await provisioned(box);
      for (const args of [['server.status', '--json'], ['server.status'], ['runs.list'], ['runs.show', 'last', '--json']]) {
        const r = withClosedStdout(box, args);
        assert.equal(r.stderr, '', `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.code, 0, args.join(' '));
      }
      script(join(box.phasesDir, 'configure.d', '20-b'), 'echo "$BOOTSTRAP_RUN_ID" > "$BOOTSTRAP_STATE_DIR/../ran"');
      const run = withClosedStdout(box, ['server.refresh', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotMatch(run.stderr, /EPIPE|at .*\.js:\d+/);
      const id = readFileSync(join(box.dir, 'ran'), 'utf8').trim();
      const journal = json(await box.run(['runs.show', id, '--json']));
      assert.equal(journal.status, 'success');
    }),
  );
});

describe('operator: an output that cannot be written', () => {
  it(
    'server.status --json > /dev/full: one line naming standard output, exit 73, never 0',
    withBox(iniWith(), async (box) => {
      await provisioned(box);
      for (const args of [['server.status', '--json'], ['runs.show', 'last'], ['product.get'], ['--version', '--json'], ['--version']]) {
        const r = spawnSync('sh', ['-c', '"$NODE" "$BIN" "$@" > /dev/full', 'sh', ...args], { env: { ...box.env, NODE: process.execPath, BIN: bin }, encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 73, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^bootstrap: cannot write to standard output: ENOSPC/);
        assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
      }
    }),
  );
});

describe('operator: the runtime is checked first', () => {
  it('bin/bootstrap on Debian 12\'s Node 18: one line naming the versions, exit 69', () => {
    const node18 = nodeBinary(nodeVersions.debian12);
    const box = sandbox();
    try {
      for (const args of [['server.status'], ['--version'], ['server.provision', '--json']]) {
        const r = spawnSync(node18, [bin, ...args], { env: box.env, encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 69, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        const lines = r.stderr.split('\n').filter((l) => l !== '');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^bootstrap: needs Node 20\.19 or later, found 18\.20\.4 \(/);
      }
      assert.ok(!existsSync(box.stateDir), 'nothing was written');
    } finally {
      box.cleanup();
    }
  });

  it('the floor bin/bootstrap checks is the engines field of package.json', () => {
    const engines = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node as string;
    const floor = /var floor = \[(\d+), (\d+)\];/.exec(readFileSync(bin, 'utf8'));
    assert.ok(floor, 'bin/bootstrap declares its floor');
    assert.equal(engines, `>=${floor[1]}.${floor[2]}`);
  });

  for (const version of [nodeVersions.lts22, nodeVersions.lts24]) {
    it(`runs on Node ${version}: provision, status, runs.show`, () => {
      const node = nodeBinary(version);
      const box = sandbox(iniWith());
      try {
        script(join(box.phasesDir, 'configure.d', '10-a'), 'echo "node $BOOTSTRAP_ACTION" >> "$BOOTSTRAP_STATE_DIR/../log"');
        const run = (args: string[]) => spawnSync(node, [bin, ...args], { env: box.env, encoding: 'utf8', timeout: 60_000 });
        const p = run(['server.provision', '--json']);
        assert.equal(p.status, 0, p.stderr);
        assert.equal(JSON.parse(p.stdout).status, 'success');
        assert.equal(readFileSync(join(box.dir, 'log'), 'utf8'), 'node provision\n');
        const s = run(['server.status', '--json']);
        assert.equal(s.status, 0, s.stderr);
        assert.equal(JSON.parse(s.stdout).provisioned, true);
        assert.equal(run(['runs.show', 'last']).status, 0);
        assert.equal(journals(box.stateDir).length, 1);
      } finally {
        box.cleanup();
      }
    });
  }
});

describe('operator: [log] file', () => {
  it(
    'in a dir that does not exist: the dir is made (0700) and the run logs there',
    withBox(iniWith(), async (box) => {
      const logFile = join(box.dir, 'log', 'deep', 'bootstrap.log');
      writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\n`));
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo step-output-line');
      const r = await box.run(['server.provision']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(join(box.dir, 'log', 'deep')).mode & 0o777, 0o700);
      assert.equal(statSync(join(box.dir, 'log')).mode & 0o777, 0o700);
      assert.equal(statSync(logFile).mode & 0o777, 0o600);
      assert.match(readFileSync(logFile, 'utf8'), /step-output-line/);
    }),
  );

  it(
    'one that cannot be made: 73 (not a dir) or 77 (as nobody), naming [log] file, before anything runs',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo ran >> "$BOOTSTRAP_STATE_DIR/../ran"');
      writeFileSync(join(box.dir, 'plain'), '');
      writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${join(box.dir, 'plain', 'sub', 'b.log')}\n`));
      const r = await box.run(['server.provision']);
      assert.equal(r.code, 73, r.stderr);
      assert.match(r.stderr, /^bootstrap: cannot open \[log\] file .*plain\/sub\/b\.log: .*not a directory/);
      assert.ok(!existsSync(join(box.dir, 'ran')), 'no step ran');

      // As nobody, a log dir under a root-owned dir: permission denied.
      const open = join(box.dir, 'open');
      mkdirSync(open, { mode: 0o755 });
      const ini = join(open, 'bootstrap.ini');
      writeFileSync(ini, iniWith({}, `\n[log]\nfile = ${join(box.dir, 'rootonly', 'b.log')}\n`), { mode: 0o644 });
      mkdirSync(join(box.dir, 'rootonly'), { mode: 0o755 });
      const state = join(box.dir, 'nobody-state');
      mkdirSync(state, { mode: 0o700 });
      execFileSync('chown', ['65534:65534', state]);
      execFileSync('chmod', ['o+x', box.dir]);
      const nobody = await box.run(['server.status', '--config', ini, '--state-dir', state], { prefix: asNobody });
      assert.equal(nobody.code, 77, nobody.stderr);
      assert.match(nobody.stderr, /^bootstrap: cannot open \[log\] file .*rootonly\/b\.log: .*permission denied/);
      assert.doesNotMatch(nobody.stderr, /bug in bootstrap/);
    }),
  );
});

describe('operator: [log] file is judged as a state file is', () => {
  it(
    'in a dir a local user owns (a symlink planted there), a symlink, a FIFO: refused before anything runs, nothing written through them',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo ran >> "$BOOTSTRAP_STATE_DIR/../ran"');
      const victim = join(box.dir, 'victim');
      writeFileSync(victim, 'precious\n');
      const theirs = join(box.dir, 'theirs');
      execFileSync('chmod', ['o+x', box.dir]);
      mkdirSync(theirs);
      execFileSync('chown', ['65534:65534', theirs]);
      execFileSync('setpriv', [...asNobody.slice(1), 'ln', '-s', victim, join(theirs, 'b.log')]);
      const cases: [string, string, number, RegExp][] = [
        ['a dir of uid 65534', join(theirs, 'b.log'), 77, /refusing \[log\] file .*theirs.*owned by uid 65534/],
        ['a symlink', join(box.dir, 'link.log'), 73, /cannot open \[log\] file .*link\.log: is a symbolic link/],
        ['a FIFO', join(box.dir, 'fifo.log'), 73, /cannot open \[log\] file .*fifo\.log: is a FIFO/],
      ];
      execFileSync('ln', ['-s', victim, join(box.dir, 'link.log')]);
      execFileSync('mkfifo', [join(box.dir, 'fifo.log')]);
      for (const [what, file, code, message] of cases) {
        writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${file}\n`));
        const r = await box.run(['server.provision'], { timeoutMs: 20_000 });
        assert.equal(r.code, code, `${what}: ${r.stderr}`);
        assert.match(r.stderr, message, what);
      }
      assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
      assert.ok(!existsSync(join(box.dir, 'ran')), 'no step ran');
    }),
  );
});

describe('operator: a dry run on a /dev/shm that a local user filled', () => {
  it(
    'goes on in the temp dir; when that is full too, 73 naming where, never a 70',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'true');
      // A private mount namespace: this machine's /dev/shm is never touched.
      const fill = `mount -t tmpfs -o size=16k tmpfs /dev/shm && chmod 1777 /dev/shm && ${asNobody.join(' ')} sh -c 'head -c 1M /dev/zero > /dev/shm/fill' 2>/dev/null;`;
      const fullTmp = `mkdir -p "$T" && mount -t tmpfs -o size=16k tmpfs "$T" && head -c 1M /dev/zero > "$T/fill" 2>/dev/null;`;
      const run = (prefix: string, tmp: string) =>
        spawnSync('unshare', ['-m', 'sh', '-c', `${prefix} TMPDIR="${tmp}" "$NODE" "$BIN" server.provision --dry-run`], { env: { ...box.env, NODE: process.execPath, BIN: bin, T: join(box.dir, 'tmp') }, encoding: 'utf8', timeout: 60_000 });
      const onTmp = run(fill, box.dir);
      assert.equal(onTmp.status, 0, onTmp.stderr);
      const neither = run(fill + fullTmp, join(box.dir, 'tmp'));
      assert.equal(neither.status, 73, neither.stderr);
      assert.match(neither.stderr, /^bootstrap: cannot write a scratch dir for .* in \/dev\/shm or .*tmp: .*no space left on device/m);
      assert.doesNotMatch(neither.stderr, /bug in bootstrap/);
    }),
  );
});

describe("operator: the machine's own os-refresh-config lock", () => {
  it('a sandbox config never honours /var/run/os-refresh-config.lock (the suite passes on a TripleO node)', async () => {
    const box = sandbox();
    try {
      const r = await box.run(['phases.list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(box.config, 'utf8'), /^orc_lockfile = ''$/m);
    } finally {
      box.cleanup();
    }
  });

});
