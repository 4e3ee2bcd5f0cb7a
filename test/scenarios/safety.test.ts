// The adversarial trial of issue 11, one test (or more) per finding: secrets, foreign state dirs,
// swapped steps, stolen locks, timeouts that hold, inputs that break every later run, callbacks.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../src/agent.js';
import { silentLogger } from '../../src/log/log.js';
import { agentMs, asNobody, bin, collect, ended, exitLagMs, isRunning, json, sandbox, type Sandbox } from '../helpers/cli.js';
import { filesUnder, iniWith, journals, readLines, recordingStep, script, withBox } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `server.status --json` until the run lock is held (bounded). */
async function waitForLock(box: Sandbox, withinMs = 10_000): Promise<any> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const r = await box.run(['server.status', '--json']);
    if (r.code === 0 && json(r).lock.state === 'held') return json(r);
    await sleep(50);
  }
  throw new Error('the run lock was never held');
}

/** Runs the CLI with `input` on its standard input. */
function runWithInput(box: Sandbox, args: string[], input: string) {
  return spawnSync(process.execPath, [bin, ...args], { env: box.env, input, encoding: 'utf8' });
}

async function lastJournal(box: Sandbox): Promise<any> {
  return json(await box.run(['runs.show', 'last', '--json']));
}

const iniWithMotd = (phases: Record<string, string | number> = {}, extra = '') => iniWith(phases, extra).replace('stats_password = secret', 'stats_password = secret\nmotd = string');

describe('safety: secrets and root', () => {
  it(
    '1. a secret given to product.set --apply is in no record: lock, server.status, "already running", journal, runs.show',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-slow'), '[ -f "$SLOW" ] && sleep 2; true');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const slow = join(box.dir, 'slow');
      writeFileSync(slow, '');
      const secret = 'S3cretOnTheCommandLine';
      const setter = box.start(['product.set', `haproxy.stats_password=${secret}`, 'haproxy.maxconn=5000', '--apply'], { env: { SLOW: slow, LOG: log } });
      const done = collect(setter, 30_000);
      const status = await waitForLock(box);
      assert.doesNotMatch(JSON.stringify(status), new RegExp(secret));
      assert.match(status.lock.holder.command, /^product\.set haproxy\.stats_password=… haproxy\.maxconn=… --apply$/);
      const other = await box.run(['server.refresh']);
      assert.equal(other.code, 75);
      assert.doesNotMatch(other.stderr, new RegExp(secret));
      assert.match(other.stderr, /product\.set haproxy\.stats_password=… .* is already running/);
      const humanStatus = await box.run(['server.status']);
      assert.doesNotMatch(humanStatus.stdout + humanStatus.stderr, new RegExp(secret));
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(secret));
      const shown = await box.run(['runs.show', 'last', '--json']);
      assert.doesNotMatch(shown.stdout, new RegExp(secret));
      for (const [file, text] of filesUnder(box.stateDir)) {
        if (file.endsWith('state.json')) continue; // the value's own store
        assert.doesNotMatch(text, new RegExp(secret), `${file} holds the secret`);
      }
    }),
  );

  it(
    '1. each flag has one spelling: --callbackUrl (a camel-case alias that skipped redaction) is an unknown flag',
    withBox(iniWith(), async (box) => {
      const r = await box.run(['server.provision', '--callbackUrl=http://127.0.0.1:1/x?token=T0kenValue']);
      assert.equal(r.code, 64);
      assert.doesNotMatch(r.stderr, /T0kenValue/);
      assert.equal(journals(box.stateDir).length, 0);
    }),
  );

  it(
    '1. product.set PRODUCT.SETTING --stdin: the value from standard input, one trailing newline removed',
    withBox(iniWith(), async (box) => {
      const r = runWithInput(box, ['product.set', 'haproxy.stats_password', '--stdin'], 'from stdin\nsecond line\n');
      assert.equal(r.status, 0, r.stderr);
      const got = await box.run(['product.get', 'haproxy.stats_password', '--reveal']);
      assert.equal(got.stdout, 'from stdin\nsecond line\n');
      assert.equal(runWithInput(box, ['product.set', 'haproxy.stats_password=x', '--stdin'], 'y').status, 64);
      assert.equal(runWithInput(box, ['product.set', 'haproxy.maxconn', 'haproxy.bind_port', '--stdin'], '1').status, 64);
      const bad = runWithInput(box, ['product.set', 'haproxy.maxconn', '--stdin'], 'many\n');
      assert.equal(bad.status, 65);
    }),
  );

  it(
    '4. every line of a multi-line secret (a PEM key) is masked in the log and the journal, short last line too',
    withBox(iniWith(), async (box, log) => {
      const lines = ['-----BEGIN TEST KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'bHVzdGVyIHNlY3JldCBsaW5lIHR3bw==', 'Q9x', '-----END TEST KEY-----'];
      assert.equal(runWithInput(box, ['product.set', 'haproxy.stats_password', '--stdin'], `${lines.join('\n')}\n`).status, 0);
      script(join(box.phasesDir, 'configure.d', '10-leaky'), `printf '%s\\n' ${lines.slice(1, 4).map((l) => `'${l}'`).join(' ')}`);
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      const journal = JSON.stringify(await lastJournal(box));
      for (const line of lines.slice(1, 4)) {
        assert.doesNotMatch(r.stderr, new RegExp(`\\| ${line.replace(/[+=]/g, '\\$&')}$`, 'm'), `log shows ${line}`);
        assert.ok(!journal.includes(line), `journal shows ${line}`);
      }
      assert.match(r.stderr, /configure\/10-leaky \| \*{8}/);
    }),
  );

  it(
    '5. the config snapshot (secrets) of a SIGKILLed agent is removed by the takeover; a stray one by pruning',
    withBox(iniWith(), async (box, log) => {
      const slow = join(box.dir, 'slow');
      writeFileSync(slow, '');
      script(join(box.phasesDir, 'configure.d', '10-slow'), 'if [ -f "$SLOW" ]; then sleep 30 & echo $! > "$LOG.pid"; wait; fi');
      const victim = box.start(['server.provision'], { env: { SLOW: slow, LOG: log } });
      const runs = join(box.stateDir, 'runs');
      const snapshots = () => (existsSync(runs) ? readdirSync(runs).filter((n) => n.endsWith('.config.json')) : []);
      for (let i = 0; i < 200 && !existsSync(`${log}.pid`); i++) await sleep(25);
      assert.equal(snapshots().length, 1);
      victim.kill('SIGKILL');
      await collect(victim);
      assert.equal(snapshots().length, 1, 'left by the killed agent');
      const orphan = Number(readFileSync(`${log}.pid`, 'utf8'));
      rmSync(slow);
      const next = await box.run(['server.provision']);
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stderr, /taking over the run lock/);
      assert.deepEqual(snapshots(), []);
      assert.ok(await ended(orphan, 2000), 'the dead run\'s step was ended');
      writeFileSync(join(runs, '20200101T000000Z-abcdef.config.json'), '{"secret":"x"}', { mode: 0o600 });
      assert.equal((await box.run(['server.refresh'])).code, 0);
      assert.deepEqual(snapshots(), []);
    }),
  );

  it(
    '6. steps never see the launcher\'s control channel (no nonce in their environment)',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-env'), 'env > "$LOG"');
      assert.equal((await box.run(['server.provision'], { env: { LOG: log } })).code, 0);
      const env = readFileSync(log, 'utf8');
      assert.match(env, /^BOOTSTRAP_RUN_ID=/m);
      assert.doesNotMatch(env, /LAUNCHER|NONCE/);
    }),
  );
});

describe('safety: a state dir or steps that another user controls', () => {
  it(
    '2. a state dir of uid 65534 with planted symlinks and a forged lock: refused (77), nothing chmodded, killed or written',
    async () => {
      const base = mkdtempSync(join(tmpdir(), 'bootstrap-hostile-'));
      const box = sandbox(iniWith());
      const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
      try {
        chmodSync(base, 0o755);
        const victim = join(base, 'victim');
        mkdirSync(victim, { mode: 0o755 });
        chmodSync(victim, 0o755);
        const ww = join(base, 'ww');
        mkdirSync(ww);
        chownSync(ww, 65534, 65534);
        const s = join(ww, 's');
        const as = (cmd: string) => assert.equal(spawnSync(asNobody[0]!, [...asNobody.slice(1), 'sh', '-c', cmd]).status, 0, cmd);
        as(`mkdir -m700 ${s} && ln -s ${victim} ${s}/runs && ln -s ${victim} ${s}/outbox`);
        as(`printf '%s' '${JSON.stringify({ pid: sleeper.pid, host: 'x', command: 'forged', startedAt: new Date().toISOString(), lockIno: 1, lockBirthMs: 1, launcherPid: sleeper.pid, runId: '../../../x' })}' > ${s}/run.lock && mkdir ${s}/run.lock.d`);
        for (const args of [['server.provision'], ['server.status'], ['product.set', 'haproxy.maxconn=1'], ['product.get']]) {
          const r = await box.run([...args, '--state-dir', s]);
          assert.equal(r.code, 77, `${args.join(' ')}: ${r.stderr}`);
          assert.match(r.stderr, /belongs to uid 65534|is not safe/);
        }
        assert.equal(statSync(victim).mode & 0o777, 0o755, 'nothing chmodded through the symlink');
        assert.deepEqual(readdirSync(victim), []);
        assert.ok(isRunning(sleeper.pid!), 'the PID named in the forged lock was not killed');
        assert.ok(!existsSync(join(base, 'x.json')) && !existsSync(join(tmpdir(), 'x.json')));
        // The same, as a dir the attacker made under a dir of ours: the dir itself is foreign.
        const mine = join(base, 'mine');
        mkdirSync(mine, { mode: 0o755 });
        mkdirSync(join(mine, 's'));
        chownSync(join(mine, 's'), 65534, 65534);
        const r = await box.run(['server.provision', '--state-dir', join(mine, 's')]);
        assert.equal(r.code, 77);
        assert.match(r.stderr, /belongs to uid 65534, not to the user running bootstrap \(uid 0\)/);
      } finally {
        sleeper.kill('SIGKILL');
        box.cleanup();
        rmSync(base, { recursive: true, force: true });
      }
    },
  );

  it(
    '2. entries of our own state dir: a symlink in place of runs/, a state.json of another user → 77, the target untouched',
    withBox(iniWith(), async (box) => {
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=1'])).code, 0);
      const elsewhere = mkdtempSync(join(tmpdir(), 'bootstrap-elsewhere-'));
      try {
        chmodSync(elsewhere, 0o755);
        rmSync(join(box.stateDir, 'runs'), { recursive: true });
        symlinkSync(elsewhere, join(box.stateDir, 'runs'));
        const r = await box.run(['server.provision']);
        assert.equal(r.code, 77, r.stderr);
        assert.match(r.stderr, /runs is a symbolic link/);
        assert.equal(statSync(elsewhere).mode & 0o777, 0o755);
        rmSync(join(box.stateDir, 'runs'));
        chownSync(join(box.stateDir, 'state.json'), 65534, 65534);
        for (const args of [['product.get'], ['server.status'], ['product.set', 'haproxy.maxconn=2']]) {
          const x = await box.run(args);
          assert.equal(x.code, 77, `${args.join(' ')}: ${x.stderr}`);
          assert.match(x.stderr, /state\.json belongs to uid 65534/);
        }
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    }),
  );

  it(
    '2. a run id read from a dead holder\'s lock is validated before it names a file',
    withBox(iniWith(), async (box) => {
      assert.equal((await box.run(['server.provision'])).code, 0);
      const dead = spawnSync('true').pid!;
      mkdirSync(join(box.stateDir, 'run.lock.d'));
      const mutex = statSync(join(box.stateDir, 'run.lock.d')); // the record must describe the mutex dir
      writeFileSync(join(box.stateDir, 'run.lock'), JSON.stringify({ pid: dead, host: hostname(), command: 'x', startedAt: new Date().toISOString(), lockIno: mutex.ino, lockBirthMs: mutex.birthtimeMs, runId: '../../evil' }), { mode: 0o600 });
      const r = await box.run(['server.refresh']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /not a run id; ignored/);
      assert.ok(!existsSync(join(box.dir, 'evil.json')) && !existsSync(join(box.stateDir, 'evil.json')));
    }),
  );

  it(
    '3. a step reached through a dir others can write (a symlink to a root file in a 0777 dir, or a chain through one) is refused (77) before any step; a sticky dir is fine',
    withBox(iniWith(), async (box, log) => {
      const base = mkdtempSync(join(tmpdir(), 'bootstrap-swap-'));
      try {
        chmodSync(base, 0o755);
        const ww = join(base, 'ww');
        mkdirSync(ww);
        chmodSync(ww, 0o777);
        const good = join(base, 'good');
        mkdirSync(good, { mode: 0o755 });
        recordingStep(box.phasesDir, 'configure', '05-first');
        script(join(ww, 'real'), `echo swapped-in >> "$LOG"`);
        symlinkSync(join(ww, 'real'), join(box.phasesDir, 'configure.d', '10-link'));
        const r = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(r.code, 77, r.stderr);
        assert.match(r.stderr, new RegExp(`${ww}: directory writable by others \\(mode 777\\)`));
        assert.deepEqual(readLines(log), [], 'no step ran');
        const plan = await box.run(['phases.list']);
        assert.match(plan.stdout, /REFUSED/);
        // A chain: the step links to a symlink in the open dir, which links to a trusted file.
        rmSync(join(box.phasesDir, 'configure.d', '10-link'));
        script(join(good, 'real'), `echo good >> "$LOG"`);
        symlinkSync(join(good, 'real'), join(ww, 'alias'));
        symlinkSync(join(ww, 'alias'), join(box.phasesDir, 'configure.d', '10-link'));
        const chain = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(chain.code, 77, 'realpath alone would pass this: the link in the open dir can be swapped');
        assert.deepEqual(readLines(log), []);
        // Sticky (as /tmp): nobody may replace another's entry there; the step runs.
        chmodSync(ww, 0o1777);
        const ok = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(ok.code, 0, ok.stderr);
        assert.deepEqual(readLines(log), ['configure/05-first configure', 'good']);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    }),
  );
});

describe('safety: the run lock', () => {
  it(
    '7. a stopped holder (SIGSTOP) keeps its lock, also against a clock 1 h ahead (faketime); it goes on after SIGCONT without losing it',
    withBox(iniWith(), async (box, log) => {
      const slow = join(box.dir, 'slow');
      writeFileSync(slow, '');
      recordingStep(box.phasesDir, 'configure', '10-a', '[ -f "$SLOW" ] && sleep 1; true');
      const holder = box.start(['server.provision'], { env: { SLOW: slow, LOG: log } });
      const done = collect(holder, 30_000);
      await waitForLock(box);
      holder.kill('SIGSTOP');
      try {
        await sleep(300);
        const ahead = await box.run(['server.provision'], { env: { LOG: log }, prefix: ['faketime', '-f', '+1h'] });
        assert.equal(ahead.code, 75, `a clock 1 h ahead took the lock: ${ahead.stderr}`);
        const now = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(now.code, 75);
        assert.match(now.stderr, /is already running \(pid \d+/);
      } finally {
        holder.kill('SIGCONT');
      }
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /lock was lost/);
      assert.deepEqual(readLines(log), ['configure/10-a configure'], 'one 10-a, never two at once');
    }),
  );

  it(
    '8. a holder killed after a step renamed the host is taken over at once (dead-holder detection uses the boot id)',
    withBox(iniWith(), async (box, log) => {
      const slow = join(box.dir, 'slow');
      writeFileSync(slow, '');
      script(join(box.phasesDir, 'configure.d', '10-rename'), 'if [ -f "$SLOW" ]; then hostname renamed-by-a-step; echo ready > "$LOG"; sleep 30; fi');
      const holder = spawn('unshare', ['--uts', '--', process.execPath, bin, 'server.provision'], { env: { ...box.env, SLOW: slow, LOG: log }, stdio: 'ignore' });
      for (let i = 0; i < 400 && !existsSync(log); i++) await sleep(25);
      assert.ok(existsSync(log), 'the step ran');
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
      rmSync(slow);
      const t0 = Date.now();
      const next = spawnSync('unshare', ['--uts', '--', 'sh', '-c', `hostname another-name && exec "${process.execPath}" "${bin}" server.provision`], { env: box.env, encoding: 'utf8', timeout: 20_000 });
      assert.equal(next.status, 0, next.stderr);
      assert.ok(Date.now() - t0 < 10_000);
      assert.match(next.stderr, /taking over the run lock/);
      const runs = json(await box.run(['runs.list', '--json'])).runs;
      assert.deepEqual(runs.map((r: any) => r.status).sort(), ['failure', 'success'], 'the dead run is recorded');
    }),
  );

  it(
    '9. five runs starting after a dead one: exactly one records it, and it is called back once',
    async () => {
      const seen: string[] = [];
      const stub = await httpStub((req, res) => {
        seen.push(String(req.headers['x-bootstrap-delivery']));
        req.resume();
        req.on('end', () => res.end('ok'));
      });
      const box = sandbox(iniWith({}, `\n[callback]\nurl = ${stub.url}/cb\ntimeout = 5\n`));
      try {
        mkdirSync(box.phasesDir, { recursive: true });
        const slow = join(box.dir, 'slow');
        writeFileSync(slow, '');
        const log = join(box.dir, 'log');
        script(join(box.phasesDir, 'configure.d', '10-slow'), 'if [ -f "$SLOW" ]; then echo x > "$LOG"; sleep 30; fi');
        const victim = box.start(['server.provision'], { env: { SLOW: slow, LOG: log } });
        for (let i = 0; i < 400 && !existsSync(log); i++) await sleep(25);
        const deadId = (await waitForLock(box)).lock.holder.run_id;
        victim.kill('SIGKILL');
        await collect(victim);
        rmSync(slow);
        const results = await Promise.all([1, 2, 3, 4, 5].map(() => box.run(['server.provision', '--wait=60'])));
        assert.deepEqual(results.map((r) => r.code), [0, 0, 0, 0, 0], results.map((r) => r.stderr).join('\n'));
        assert.equal(results.filter((r) => /recorded run .* as failed/.test(r.stderr)).length, 1);
        assert.equal(seen.filter((id) => id === deadId).length, 1, `callbacks: ${seen.join(' ')}`);
        assert.equal(new Set(seen).size, 6, 'the dead run and the five');
        // Eight agents in one process probe the dead lock at the same moment: still one record.
        writeFileSync(slow, '');
        rmSync(log, { force: true });
        const second = box.start(['server.provision'], { env: { SLOW: slow, LOG: log } });
        for (let i = 0; i < 400 && !existsSync(log); i++) await sleep(25);
        const secondId = (await waitForLock(box)).lock.holder.run_id;
        second.kill('SIGKILL');
        await collect(second);
        rmSync(slow);
        const warnings: string[] = [];
        const logger = { ...silentLogger(), warn: (m: string) => warnings.push(m) };
        const agents = Array.from({ length: 8 }, () => new Agent({ config: box.config, stateDir: box.stateDir, phasesDir: box.phasesDir, env: box.env, logger }));
        const outcomes = await Promise.all(agents.map((a) => a.provision({ waitMs: 60_000 })));
        assert.deepEqual(outcomes.map((o) => o.exitCode), Array(8).fill(0));
        assert.equal(warnings.filter((w) => w.startsWith(`recorded run ${secondId} as failed`)).length, 1, warnings.join('\n'));
        assert.equal(seen.filter((id) => id === secondId).length, 1, `callbacks: ${seen.join(' ')}`);
      } finally {
        box.cleanup();
        await stub.close();
      }
    },
  );
});

describe('safety: timeouts and processes', () => {
  it(
    '10. --timeout holds within a phase: steps of 1 s, 4 s and 1 s with --timeout 3 fail at the second',
    withBox(iniWith(), async (box, log) => {
      for (const [n, secs] of [['10-a', 1], ['20-b', 4], ['30-c', 1]] as const) recordingStep(box.phasesDir, 'configure', n, `sleep ${secs}`);
      const r = await box.run(['server.provision', '--timeout', '3', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1, r.stderr);
      // The run's own clock (node's start-up under load is not the run's): 20-b was stopped at the
      // run's deadline, with what was left of it (about 2 s), not after its own 4 s nor after 30-c.
      // 2 s of the 3 for the run's set-up and 10-a: the set-up alone took 0.3 s under load on a
      // Node that compiles the bundle without the code cache (22, 24), too much for a 0.5 s margin.
      assert.ok(json(r).duration_ms < 4400, `took ${json(r).duration_ms} ms`);
      assert.match(json(r).failure.message, /^timed out after [0-3]\.\d+ s/);
      assert.equal(json(r).failure.kind, 'timeout');
      assert.equal(json(r).failure.step, '20-b');
      assert.deepEqual(readLines(log), ['configure/10-a configure', 'configure/20-b configure']);
    }),
  );

  it(
    '11. durations: past 24 days refused (78, naming the key), units accepted, nothing fires at once',
    withBox(iniWith(), async (box, log) => {
      recordingStep(box.phasesDir, 'configure', '10-a', 'sleep 0.3');
      for (const [key, value] of <[string, string][]>[['script_timeout', '3000000'], ['run_timeout', '30d'], ['script_timeout', '-1'], ['cleanup_timeout', '5 minutes'], ['retry_delay', 'soon']]) {
        writeFileSync(box.config, iniWith({ [key]: value }));
        const r = await box.run(['server.provision']);
        assert.equal(r.code, 78, `${key} = ${value}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`\\[phases\\] ${key}: '${value}'`));
      }
      writeFileSync(box.config, iniWith({ script_timeout: '30m', run_timeout: '4h', cleanup_timeout: '90s', retry_delay: 0, kill_grace: '2' }));
      const ok = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(json(await box.run(['runs.show', '--json'])).phases.find((p: any) => p.phase === 'configure').steps[0].timed_out, false);
      const flag = await box.run(['server.provision', '--timeout', '99999999']);
      assert.equal(flag.code, 64);
      assert.match(flag.stderr, /--timeout/);
    }),
  );

  it(
    '12. environment.d is bounded: a sleeping file fails the run at --timeout, and SIGTERM stops it at once; nothing it started is left',
    withBox(iniWith(), async (box, log) => {
      mkdirSync(join(box.phasesDir, 'environment.d'), { recursive: true });
      writeFileSync(join(box.phasesDir, 'environment.d', '10-slow'), `sleep 30 & echo $! > "$LOG.pid"; wait\n`);
      recordingStep(box.phasesDir, 'configure', '10-a');
      // Unbounded, it would wait for the 30 s sleep (box.run gives up at 25 s).
      const r = await box.run(['server.provision', '--timeout', '1', '--json'], { env: { LOG: log }, timeoutMs: 25_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.ok(json(r).duration_ms < 4000, `the run took ${json(r).duration_ms} ms by its own clock`);
      assert.equal(json(r).failure.kind, 'timeout');
      assert.equal(json(r).failure.step, 'environment.d/10-slow');
      assert.ok(await ended(Number(readFileSync(`${log}.pid`, 'utf8')), 2000));
      assert.deepEqual(readLines(log), [], 'no step ran');
      rmSync(`${log}.pid`);
      const child = box.start(['server.provision'], { env: { LOG: log } });
      const done = collect(child, 20_000);
      for (let i = 0; i < 200 && !existsSync(`${log}.pid`); i++) await sleep(25);
      child.kill('SIGTERM');
      const stopped = await done;
      assert.equal(stopped.code, 1);
      const stopping = agentMs(stopped.stderr, /SIGTERM: stopping the run/);
      assert.ok(stopping < 3000, `from SIGTERM to the agent's last line: ${stopping} ms`);
      assert.equal((await lastJournal(box)).failure.kind, 'signal');
      assert.ok(await ended(Number(readFileSync(`${log}.pid`, 'utf8')), 2000));
    }),
  );

  it(
    '12. what an environment.d file prints goes to the log and never into the environment',
    withBox(iniWith(), async (box, log) => {
      mkdirSync(join(box.phasesDir, 'environment.d'), { recursive: true });
      writeFileSync(join(box.phasesDir, 'environment.d', '10-noisy'), 'echo hi\necho to-stderr >&2\nprintf "no newline"\nexport FROM_ENV=yes\n');
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo "$BOOTSTRAP_MODE $BOOTSTRAP_ACTION $FROM_ENV" >> "$LOG"');
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readLines(log), ['standby provision yes']);
      assert.match(r.stderr, /environment\.d \| hi$/m);
      assert.match(r.stderr, /environment\.d \| to-stderr$/m);
    }),
  );

  it(
    '12. with no usable bash the run is still journaled, recorded as last_run and called back (exit 1)',
    withBox(iniWith({}, '\n[callback]\nurl = http://127.0.0.1:1/cb\ntimeout = 1\n'), async (box, log) => {
      recordingStep(box.phasesDir, 'configure', '10-a');
      mkdirSync(join(box.phasesDir, 'environment.d'));
      writeFileSync(join(box.phasesDir, 'environment.d', '10-env'), 'export A=1\n');
      const r = spawnSync('unshare', ['-m', '--', 'sh', '-c', `mount --bind /dev/null /usr/bin/bash && exec "${process.execPath}" "${bin}" server.provision`], { env: { ...box.env, LOG: log }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /cannot start .*bash/);
      const j = await lastJournal(box);
      assert.equal(j.status, 'failure');
      const status = json(await box.run(['server.status', '--json']));
      assert.equal(status.last_run.id, j.id);
      assert.equal(readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json')).length, 1);
    }),
  );

  it(
    '13. nothing a step started outlives the run: a background child holding the output, a setsid child, also after a timeout',
    withBox(iniWith({ script_timeout: 1, kill_grace: 1 }), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-bg'), 'sleep 20 & echo $! >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '20-setsid'), 'setsid sleep 20 > /dev/null 2>&1 < /dev/null & echo $! >> "$LOG"');
      // Waiting for the children (20 s) fails the first bound; the run's own clock, the second.
      const t0 = Date.now();
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - t0 < 15_000, `the CLI stayed ${Date.now() - t0} ms`);
      assert.ok((await lastJournal(box)).duration_ms < 4000, 'the run did not wait for them');
      assert.ok(exitLagMs(r) < 3000, `the CLI stayed ${exitLagMs(r)} ms after its last line`);
      for (const pid of readLines(log).map(Number)) assert.ok(await ended(pid, 1000), `pid ${pid} still running`);
      // Named as they were when swept: `setsid` may not have exec'd `sleep` yet on a loaded machine.
      assert.match(r.stderr, /ended 2 process\(es\) the run's steps left running: (sleep|setsid) \(\d+\), (sleep|setsid) \(\d+\)/);
      rmSync(log);
      script(join(box.phasesDir, 'configure.d', '30-hang'), 'setsid sh -c "sleep 60" & echo $! >> "$LOG"; sleep 60');
      const t1 = Date.now();
      const timed = await box.run(['server.refresh'], { env: { LOG: log } });
      assert.equal(timed.code, 1);
      assert.ok(Date.now() - t1 < 30_000, `the CLI stayed ${Date.now() - t1} ms (the step sleeps 60 s)`);
      const j = await lastJournal(box);
      assert.ok(j.duration_ms < 6000, `the run took ${j.duration_ms} ms with script_timeout 1 s, kill_grace 1 s`);
      assert.ok(exitLagMs(timed) < 3000, `the CLI stayed ${exitLagMs(timed)} ms after its last line`);
      for (const pid of readLines(log).map(Number)) assert.ok(await ended(pid, 1000), `pid ${pid} still running`);
    }),
  );

  it(
    '13. an exec heartbeat whose command leaves a child holding its output answers at once',
    withBox(iniWith({}, '\n[heartbeat.bg]\ntype = exec\ncommand = sh -c "sleep 20 & echo started"\ntimeout = 5\n'), async (box) => {
      const t0 = Date.now();
      const r = await box.run(['heartbeat.get', 'bg', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - t0 < 15_000, `the CLI stayed ${Date.now() - t0} ms (the child sleeps 20 s)`);
      assert.ok(json(r).results[0].latency_ms < 3000, `the check took ${json(r).results[0].latency_ms} ms (timeout 5 s)`);
      assert.equal(json(r).results[0].detail, 'started');
    }),
  );

  it(
    '14. a run failing with many steps left prints no runtime warning',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '00-fail'), 'exit 3');
      for (let i = 1; i <= 15; i++) script(join(box.phasesDir, 'configure.d', `${String(i).padStart(2, '0')}-next`), 'true');
      const r = await box.run(['server.provision']);
      assert.equal(r.code, 1);
      assert.doesNotMatch(r.stderr, /Warning|MaxListeners/);
    }),
  );
});

describe('safety: inputs that would break every later run', () => {
  it(
    '15. a value too large for a step\'s environment is refused (65) at product.set and when read back; unset repairs',
    withBox(iniWithMotd(), async (box, log) => {
      recordingStep(box.phasesDir, 'configure', '10-a');
      const big = 'x'.repeat(131_055);
      const r = await box.run(['product.set', `haproxy.motd=${big}`]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /131055 bytes, more than the 122880 bytes a step's environment can take/);
      assert.ok(r.stderr.length < 400, 'the value is not echoed');
      assert.equal((await box.run(['product.set', 'haproxy.motd=small'])).code, 0);
      const file = join(box.stateDir, 'state.json');
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      doc.products.haproxy.settings.motd = big;
      writeFileSync(file, JSON.stringify(doc));
      for (const args of [['product.get'], ['server.provision']]) {
        const x = await box.run(args, { env: { LOG: log } });
        assert.equal(x.code, 65, `${args.join(' ')}: ${x.stderr}`);
        assert.match(x.stderr, /state\.json: haproxy\.motd: its value is 131055 bytes/);
        assert.match(x.stderr, /product\.unset/);
      }
      assert.equal((await box.run(['product.unset', 'haproxy.motd'])).code, 0);
      assert.equal((await box.run(['server.provision'], { env: { LOG: log } })).code, 0);
    }),
  );

  it(
    '16. state.json of the wrong shape is 73 with the path; a wrong value is 65 with the key; a bad schema is never rewritten',
    withBox(iniWith(), async (box) => {
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=10'])).code, 0);
      const file = join(box.stateDir, 'state.json');
      const good = JSON.parse(readFileSync(file, 'utf8'));
      const cases: [any, number, RegExp, string[]][] = [
        [{ ...good, last_checkup: { results: 5 } }, 73, /last_checkup\.healthy is missing|last_checkup/, ['server.status']],
        [{ ...good, last_run: { id: 1 } }, 73, /last_run\.id is a number, not a string/, ['server.status']],
        [{ ...good, schema: 0.5 }, 73, /"schema" is 0\.5/, ['product.get']],
        [{ ...good, schema: -1 }, 73, /"schema" is -1/, ['product.set', 'haproxy.maxconn=2']],
        [{ ...good, products: { haproxy: { enabled: true, version: null, settings: { bind_port: 99999 } } } }, 65, /products\.haproxy\.settings\.bind_port = 99999 is not a port number/, ['server.provision']],
        [{ ...good, products: { haproxy: { enabled: true, version: null, settings: { maxconn: 'many' } } } }, 65, /maxconn = "many" is not an integer/, ['product.get']],
      ];
      for (const [doc, code, pattern, args] of cases) {
        const text = JSON.stringify(doc);
        writeFileSync(file, text);
        const r = await box.run(args);
        assert.equal(r.code, code, `${text}: ${r.stderr}`);
        assert.match(r.stderr, pattern);
        assert.equal(readFileSync(file, 'utf8'), text, 'never rewritten');
      }
    }),
  );

  it(
    '17. --config naming a FIFO or /dev/zero is refused at once (only regular files are read, size bound while reading)',
    withBox(iniWith(), async (box) => {
      const fifo = join(box.dir, 'fifo.ini');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
      // Read, the FIFO would block for ever and /dev/zero never end: box.run gives up at 10 s.
      for (const config of [fifo, '/dev/zero']) {
        const r = await box.run(['product.get', '--config', config], { timeoutMs: 10_000 });
        assert.equal(r.code, 78, r.stderr);
        assert.match(r.stderr, /is not a regular file/);
      }
      writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = http://127.0.0.1:1/\nsecret_file = ${fifo}\n`));
      const secret = await box.run(['server.provision'], { timeoutMs: 10_000 });
      assert.equal(secret.code, 78);
      assert.match(secret.stderr, /secret_file/);
    }),
  );

  it(
    '18. quoted duplicate keys and quoted __proto__ keys and sections are refused (78) like unquoted ones',
    withBox(iniWith(), async (box) => {
      for (const [text, pattern] of [
        [iniWith().replace('maxconn = int:4096', 'maxconn = int:4096\n"maxconn" = int:1'), /maxconn is set twice/],
        [iniWith().replace('[server]', '[server]\n"__proto__" = x'), /'__proto__' is not allowed/],
        [`${iniWith()}\n["__proto__"]\nx = 1\n`, /'__proto__' is not allowed/],
      ] as [string, RegExp][]) {
        writeFileSync(box.config, text);
        const r = await box.run(['product.get']);
        assert.equal(r.code, 78, text);
        assert.match(r.stderr, pattern);
      }
    }),
  );

  it(
    '19. errors are one line, and a malformed pair never echoes its value',
    withBox(iniWith(), async (box) => {
      for (const [args, code] of [
        [['product.get', 'hap\nroxy'], 65],
        [['product.get', '--log-level', 'loud'], 64],
        [['product.set', 'haproxy.stats_password:S3cretColon'], 64],
      ] as [string[], number][]) {
        const r = await box.run(args);
        assert.equal(r.code, code, r.stderr);
        assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
        assert.doesNotMatch(r.stderr, /S3cretColon/);
      }
    }),
  );

  it(
    '20. units.install --bin with a space is quoted; with a newline it is refused (64) and nothing is written',
    withBox(iniWith(), async (box) => {
      const dir = join(box.dir, 'units');
      const r = await box.run(['units.install', '--dir', dir, '--no-reload', '--bin', '/opt/my dir/bootstrap']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(join(dir, 'bootstrap-refresh.service'), 'utf8'), /^ExecStart="\/opt\/my dir\/bootstrap" (--\S+ \S+ )*server\.refresh/m);
      const evil = join(box.dir, 'evil');
      const bad = await box.run(['units.install', '--dir', evil, '--no-reload', '--bin', '/opt/x\nExecStartPre=/bin/evil']);
      assert.equal(bad.code, 64);
      assert.ok(!existsSync(evil));
    }),
  );
});

describe('safety: callbacks and scale', () => {
  it(
    '21. Retry-After 0, -1 or a past date never turns retries into a flood: the backoff is the floor',
    async () => {
      for (const retryAfter of ['0', '-1', 'Wed, 21 Oct 2015 07:28:00 GMT']) {
        let posts = 0;
        const stub = await httpStub((req, res) => {
          posts++;
          req.resume();
          res.writeHead(429, { 'retry-after': retryAfter }).end();
        });
        const box = sandbox(iniWith({}, `\n[callback]\nurl = ${stub.url}/cb\ntimeout = 2\n`));
        try {
          mkdirSync(box.phasesDir);
          assert.equal((await box.run(['server.provision'])).code, 0);
          assert.ok(posts >= 1 && posts <= 6, `Retry-After ${retryAfter}: ${posts} POSTs in 2 s`);
        } finally {
          box.cleanup();
          await stub.close();
        }
      }
    },
  );

  it(
    '22. a torn outbox file, or one with no body, goes to outbox/dead/ with the reason; the others are delivered',
    async () => {
      const got: string[] = [];
      const stub = await httpStub((req, res) => {
        got.push(String(req.headers['x-bootstrap-delivery']));
        req.resume();
        res.end();
      });
      const box = sandbox(iniWith({}, `\n[callback]\nurl = ${stub.url}/cb\ntimeout = 3\n`));
      try {
        mkdirSync(box.phasesDir);
        assert.equal((await box.run(['product.set', 'haproxy.maxconn=1'])).code, 0); // makes the state dir
        const outbox = join(box.stateDir, 'outbox');
        writeFileSync(join(outbox, '20200101T000000000Z-torn.json'), '{"id": "torn", "bo', { mode: 0o600 });
        writeFileSync(join(outbox, '20200101T000000001Z-nobody.json'), JSON.stringify({ id: 'nobody', url_source: 'config', url: null, attempts: 0 }), { mode: 0o600 });
        const before = json(await box.run(['server.status', '--json']));
        assert.equal(before.callbacks.pending, 2);
        const run = await box.run(['server.provision', '--json']);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(got, [json(run).id]);
        const dead = readdirSync(join(outbox, 'dead')).filter((n) => n.endsWith('.json'));
        assert.equal(dead.length, 2);
        for (const n of dead) assert.match(JSON.parse(readFileSync(join(outbox, 'dead', n), 'utf8')).dead_reason, /broken outbox file: (not JSON|no "body")/);
        const after = json(await box.run(['server.status', '--json']));
        assert.equal(after.callbacks.pending, 0);
        assert.equal(after.callbacks.dead, 2);
        const flush = await box.run(['callback.flush']);
        assert.equal(flush.code, 0);
      } finally {
        box.cleanup();
        await stub.close();
      }
    },
  );

  it(
    '23. 30,000 waiting callbacks and the receiver down: a flush ends within its timeout; runs.list reads 2,000 journals in one pass',
    withBox(iniWith({}, '\n[callback]\nurl = http://127.0.0.1:1/cb\ntimeout = 2\n'), async (box) => {
      assert.equal((await box.run(['server.provision'])).code, 0);
      const outbox = join(box.stateDir, 'outbox');
      const item = (i: number) => JSON.stringify({ id: `cb-${i}`, created_at: new Date().toISOString(), url_source: 'config', url: null, body: '{}', attempts: 0, last_error: null });
      for (let i = 0; i < 30_000; i++) writeFileSync(join(outbox, `20200101T000000${String(i).padStart(6, '0')}Z-cb-${i}.json`), item(i));
      // Timed by the agent's own clock (-v): from the start of delivery, listing included, to its
      // last line; and a run from taking its lock to its last line; then each ended.
      const flush = await box.run(['callback.flush', '--json', '-v'], { timeoutMs: 30_000 });
      assert.equal(flush.code, 1);
      assert.ok(json(flush).waiting.length >= 30_000);
      const took = agentMs(flush.stderr, /callbacks: flushing/);
      assert.ok(took < 2000 + 3000, `flush took ${took} ms with a 2 s timeout`);
      assert.ok(exitLagMs(flush) < 5000, `the flush ended ${exitLagMs(flush)} ms after its last line`);
      const run = await box.run(['server.refresh', '-v'], { timeoutMs: 30_000 });
      assert.equal(run.code, 0);
      const ran = agentMs(run.stderr, /run lock .* taken/);
      assert.ok(ran < 2000 + 3000, `a run took ${ran} ms with 30,000 callbacks waiting`);
      assert.ok(exitLagMs(run) < 5000, `the run ended ${exitLagMs(run)} ms after its last line`);
      const journal = readFileSync(join(box.stateDir, 'runs', journals(box.stateDir)[0]!), 'utf8');
      for (let i = 0; i < 2000; i++) {
        const id = `20210101T${String(Math.floor(i / 60)).padStart(4, '0')}${String(i % 60).padStart(2, '0')}Z-${i.toString(16).padStart(6, '0')}`;
        writeFileSync(join(box.stateDir, 'runs', `${id}.json`), journal.replace(/"id":"[^"]+"/, `"id":"${id}"`));
      }
      const t1 = Date.now();
      const list = await box.run(['runs.list', '--json'], { timeoutMs: 60_000 });
      assert.equal(list.code, 0);
      assert.equal(json(list).runs.length, 2002);
      assert.ok(Date.now() - t1 < 5000, `runs.list took ${Date.now() - t1} ms`);
    }),
  );

  it(
    '24. when the commit cannot be written the run fails with that code, and its callback says so (never success)',
    withBox(iniWith({}, '\n[callback]\nurl = http://127.0.0.1:1/cb\ntimeout = 1\n'), async (box) => {
      const agent = new Agent({
        config: box.config,
        stateDir: box.stateDir,
        phasesDir: box.phasesDir,
        env: box.env,
        stateWriteHooks: {
          beforeStep: (step) => {
            if (step === 'write') throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          },
        },
      });
      const outcome = await agent.provision();
      assert.equal(outcome.exitCode, 73);
      assert.equal(outcome.journal!.status, 'failure');
      const waiting = readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json'));
      assert.equal(waiting.length, 1);
      const body = JSON.parse(JSON.parse(readFileSync(join(box.stateDir, 'outbox', waiting[0]!), 'utf8')).body);
      assert.equal(body.status, 'failure');
      assert.equal(body.exit_code, 73);
      assert.equal(existsSync(join(box.stateDir, 'state.json')), false, 'nothing committed');
      const journal = JSON.parse(readFileSync(join(box.stateDir, 'runs', journals(box.stateDir)[0]!), 'utf8'));
      assert.equal(journal.status, 'failure');
    }),
  );

  it(
    '25. userinfo in the callback URL is sent as Basic auth and never logged',
    async () => {
      let auth: string | undefined;
      let path: string | undefined;
      const stub = await httpStub((req, res) => {
        auth = req.headers.authorization;
        path = req.url;
        req.resume();
        res.end();
      });
      const box = sandbox(iniWith({}, `\n[callback]\nurl = http://bootstrap:p%40ssW0rd@127.0.0.1:${stub.port}/cb\ntimeout = 3\n`));
      try {
        mkdirSync(box.phasesDir);
        const r = await box.run(['server.provision', '-v']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(auth, `Basic ${Buffer.from('bootstrap:p@ssW0rd').toString('base64')}`);
        assert.equal(path, '/cb');
        assert.doesNotMatch(r.stderr + r.stdout, /p%40ssW0rd|p@ssW0rd/);
      } finally {
        box.cleanup();
        await stub.close();
      }
    },
  );
});
