// server.disable --reason / server.enable, black-box: what each run command does while the server
// is disabled (the timer's refresh: 0 and the line; the others: 75 and the line, unless --force;
// dry runs pass), the reason's bounds and masking, who is recorded, disabling during a run, and
// the record in server.status and the checkup callback.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asNobody, collect, json, root, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, journals, readLines, script, withBox } from '../helpers/phases.js';
import { jsonReceiver } from '../helpers/servers.js';

const line = /^disabled since \d{4}-\d\d-\d\dT[\d:.]+Z by alice \(uid 0, via sudo\): kernel upgrade, OPS-1$/;
const asAlice = { env: { SUDO_USER: 'alice' } };

/** A box with one recording step, provisioned, then disabled by alice. */
async function provisionedAndDisabled(box: Sandbox, log: string): Promise<void> {
  script(join(box.phasesDir, 'configure.d', '10-rec'), `echo "$BOOTSTRAP_ACTION" >> "${log}"`);
  assert.equal((await box.run(['server.provision', '-q'])).code, 0);
  const d = await box.run(['server.disable', '--reason', 'kernel upgrade, OPS-1'], asAlice);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout.trim(), line);
}

const state = (box: Sandbox) => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));

async function waitFor(what: string, cond: () => boolean, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('server.disable / server.enable', () => {
  it('records since, by and reason in state.json; status shows it (human and --json)', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const d = state(box).disabled;
    assert.equal(d.by, 'alice (uid 0, via sudo)');
    assert.equal(d.reason, 'kernel upgrade, OPS-1');
    assert.ok(Math.abs(Date.parse(d.since) - Date.now()) < 120_000, d.since);
    const s = await box.run(['server.status']);
    assert.match(s.stdout, new RegExp(`^disabled: +since ${d.since.replace(/\./g, '\\.')} by alice \\(uid 0, via sudo\\): kernel upgrade, OPS-1;`, 'm'));
    assert.deepEqual(json(await box.run(['server.status', '--json'])).disabled, d);
    // Without sudo: the login name of the uid (root here), and the uid.
    await box.run(['server.disable', '--reason', 'again']);
    assert.equal(state(box).disabled.by, 'root (uid 0)');
  }));

  it("the timer's server.refresh exits 0 with the one line and runs nothing, taking no lock", withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const before = journals(box.stateDir).length;
    const r = await box.run(['server.refresh', '--wait=300']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), line);
    assert.equal(r.stderr, '');
    const j = json(await box.run(['server.refresh', '--json']));
    assert.equal(j.status, 'disabled');
    assert.equal(j.exit_code, 0);
    assert.equal(j.disabled.by, 'alice (uid 0, via sudo)');
    assert.deepEqual(readLines(log), ['provision'], 'no step ran');
    assert.equal(journals(box.stateDir).length, before, 'no run was journaled');
  }));

  it('other run commands exit 75 with the same line (stderr; --json: the error), and change nothing', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const commands = [['server.provision'], ['product.upgrade', 'haproxy', '--to', '2.8'], ['server.mode', 'active'], ['server.resume', '--abandon'], ['product.set', 'haproxy.maxconn=8000', '--apply'], ['product.unset', 'haproxy.maxconn', '--apply']];
    for (const argv of commands) {
      const r = await box.run(argv);
      assert.equal(r.code, 75, `${argv.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const message = /^bootstrap: (.*) \(bootstrap server\.enable allows runs again; --force runs this one anyway\)\n$/.exec(r.stderr);
      assert.ok(message, r.stderr);
      assert.match(message[1]!, line);
      const j = await box.run([...argv, '--json']);
      assert.equal(j.code, 75);
      assert.match(json(j).error.message, /^disabled since .* by alice \(uid 0, via sudo\): kernel upgrade, OPS-1 \(/);
    }
    assert.deepEqual(readLines(log), ['provision'], 'no step ran');
    const s = state(box);
    assert.equal(s.mode, null, 'the mode was not committed');
    assert.deepEqual(s.products.haproxy?.settings ?? {}, {}, 'product.set --apply wrote nothing: all or none');
    assert.equal(s.products.haproxy?.version, '2.6');
  }));

  it('dry runs, state-only changes and non-run commands are allowed while disabled', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    for (const argv of [['server.provision', '--dry-run'], ['server.refresh', '--dry-run'], ['product.upgrade', 'haproxy', '--to', '2.8', '--dry-run'], ['server.mode', 'active', '--no-apply'], ['product.set', 'haproxy.maxconn=8000'], ['phases.list'], ['heartbeat.checkup'], ['callback.flush']]) {
      const r = await box.run(argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const s = state(box);
    assert.equal(s.mode, 'active');
    assert.equal(s.products.haproxy.settings.maxconn, 8000);
    assert.deepEqual(readLines(log), ['provision'], 'no step ran');
  }));

  it('--force runs once, with a warning; the server stays disabled', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    for (const argv of [['server.refresh', '--force'], ['server.provision', '--force'], ['server.mode', 'active', '--force'], ['product.upgrade', 'haproxy', '--to', '2.8', '--force'], ['product.set', 'haproxy.maxconn=8000', '--apply', '--force']]) {
      const r = await box.run(argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /warn: disabled since .* by alice \(uid 0, via sudo\): kernel upgrade, OPS-1; running anyway \(--force\)/);
      assert.equal(r.stderr.match(/running anyway/g)?.length, 1, 'warned once');
    }
    assert.deepEqual(readLines(log), ['provision', 'refresh', 'provision', 'mode', 'upgrade', 'refresh']);
    const s = state(box);
    assert.equal(s.disabled.reason, 'kernel upgrade, OPS-1');
    assert.equal(s.mode, 'active');
    assert.equal(s.products.haproxy.version, '2.8');
    // --force without --apply is refused as the other run flags are.
    assert.equal((await box.run(['product.set', 'haproxy.maxconn=1', '--force'])).code, 64);
  }));

  it('server.resume: exit 0 and the line at boot (nothing waits, or something does); --force resumes', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const r = await box.run(['server.resume', '--wait=300']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), line);
    const forced = await box.run(['server.resume', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /no run waits for a reboot; nothing to resume/);
  }));

  it('server.enable allows runs again; when not disabled it says so, exit 0', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const e = await box.run(['server.enable'], asAlice);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout.trim(), /^enabled \(was disabled since .* by alice \(uid 0, via sudo\): kernel upgrade, OPS-1\)$/);
    assert.match(e.stderr, /server\.enable by alice \(uid 0, via sudo\): runs allowed again/);
    assert.equal(state(box).disabled, null);
    assert.equal((await box.run(['server.refresh', '-q'])).code, 0);
    assert.deepEqual(readLines(log), ['provision', 'refresh']);
    const again = await box.run(['server.enable']);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, 'not disabled; nothing to do\n');
    assert.deepEqual(json(await box.run(['server.enable', '--json'])), { schema_version: 1, enabled: true, was: null });
  }));

  it('a second disable replaces the first and says what it replaced', withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    const r = await box.run(['server.disable', '--reason', 'still at it', '--json']);
    const j = json(r);
    assert.equal(j.disabled.reason, 'still at it');
    assert.equal(j.previous.reason, 'kernel upgrade, OPS-1');
    const human = await box.run(['server.disable', '--reason', 'third']);
    assert.match(human.stdout, /^disabled since .*: third\n\(it replaces: disabled since .*: still at it\)\n$/);
  }));

  it('the reason is required, one line, 1 to 500 characters (else 64, nothing recorded)', withBox(iniWith(), async (box) => {
    for (const argv of [[], ['--reason'], ['--reason', '   '], ['--reason', 'x'.repeat(501)], ['--reason', 'two\nlines'], ['--reason', 'esc \x1b[2J'], ['--reason', 'c1 \u009b']]) {
      const r = await box.run(['server.disable', ...argv]);
      assert.equal(r.code, 64, `${JSON.stringify(argv)}: ${r.stderr}`);
      assert.match(r.stderr, /^bootstrap: (server\.disable needs --reason TEXT|--reason: )/);
      assert.doesNotMatch(r.stderr, /\x1b|\u009b/);
    }
    assert.equal(existsSync(join(box.stateDir, 'state.json')), false, 'nothing was written');
    assert.equal((await box.run(['server.disable', '--reason', 'é'.repeat(500)])).code, 0);
  }));

  it('secrets of the config are masked out of the reason: never stored, never printed', withBox(iniWith(), async (box) => {
    const secret = 'Hunter2-very-secret';
    assert.equal((await box.run(['product.set', `haproxy.stats_password=${secret}`])).code, 0);
    const r = await box.run(['server.disable', '--reason', `rotating ${secret} now`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: rotating \*{8} now$/m);
    assert.doesNotMatch(r.stdout + r.stderr, /Hunter2/);
    // state.json holds the secret as the setting's value (0600); the record never does.
    assert.equal(state(box).disabled.reason, 'rotating ******** now');
    assert.doesNotMatch((await box.run(['server.status'])).stdout + (await box.run(['server.status', '--check'])).stdout, /Hunter2/);
  }));

  it("another user may neither disable nor enable root's server (77), nor read its --check", withBox(iniWith(), async (box, log) => {
    await provisionedAndDisabled(box, log);
    chmodSync(box.dir, 0o755);
    chmodSync(box.config, 0o644);
    for (const argv of [['server.disable', '--reason', 'mine now'], ['server.enable'], ['server.status', '--check']]) {
      const r = await box.run(argv, { prefix: asNobody });
      assert.equal(r.code, 77, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /belongs to uid 0, not to the user running bootstrap \(uid 65534\)/);
    }
    assert.equal(state(box).disabled.reason, 'kernel upgrade, OPS-1');
  }));

  it('disabling during a long run works at once (no run lock) and stops the next run', withBox(iniWith(), async (box, log) => {
    const go = join(box.dir, 'go');
    const started = join(box.dir, 'started');
    script(join(box.phasesDir, 'configure.d', '10-slow'), `echo "$BOOTSTRAP_ACTION" >> "${log}"\ntouch "${started}"\nwhile [ ! -f "${go}" ]; do sleep 0.05; done`);
    const running = collect(box.start(['server.provision', '-q']), 120_000);
    await waitFor('the step to start', () => existsSync(started));
    const t0 = Date.now();
    const d = await box.run(['server.disable', '--reason', 'kernel upgrade, OPS-1'], asAlice);
    assert.equal(d.code, 0, d.stderr);
    assert.ok(Date.now() - t0 < 20_000, 'not blocked by the run');
    writeFileSync(go, '');
    const r = await running;
    assert.equal(r.code, 0, `the run going on finishes: ${r.stderr}`);
    const next = await box.run(['server.refresh']);
    assert.equal(next.code, 0);
    assert.match(next.stdout.trim(), line);
    assert.deepEqual(readLines(log), ['provision']);
  }));

  it("heartbeat.checkup --report's callback carries the record (null when enabled), valid per the schema", withBox(iniWith(), async (box) => {
    const r = await jsonReceiver();
    try {
      writeFileSync(box.config, `${readFileSync(box.config, 'utf8')}\n[callback]\nurl = ${r.url}\n\n[heartbeat.web]\ntype = tcp\naddress = 127.0.0.1:${r.port}\n`);
      const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
      assert.equal((await box.run(['heartbeat.checkup', '--report'])).code, 0);
      assert.equal((await box.run(['server.disable', '--reason', 'kernel upgrade, OPS-1'], asAlice)).code, 0);
      const c = await box.run(['heartbeat.checkup', '--report']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(r.bodies.length, 2);
      assert.equal(r.bodies[0]!.body.disabled, null);
      assert.deepEqual(r.bodies[1]!.body.disabled, state(box).disabled);
      for (const { body } of r.bodies) assert.deepEqual(validate(schema, body), []);
    } finally {
      await r.close();
    }
  }));

  it('help: both commands with examples; --force on every run command', withBox(iniWith(), async (box) => {
    for (const command of ['server.disable', 'server.enable']) {
      const h = await box.run([command, '--help']);
      assert.equal(h.code, 0);
      assert.match(h.stdout, /Examples:\n {2}bootstrap \S/);
    }
    for (const command of ['server.provision', 'server.refresh', 'server.mode', 'server.resume', 'product.upgrade', 'product.set', 'product.unset']) {
      assert.match((await box.run([command, '--help'])).stdout, /--force/, command);
      assert.match((await box.run(['completion', '--words', 'flags', command])).stdout, /^--force$/m, command);
    }
  }));
});
