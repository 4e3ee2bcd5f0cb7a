// Refused runs are runs: a run command refused before its first step (77 an untrusted step, 73
// a state dir that cannot be used, 78 an invalid bootstrap.ini, a plan refusal) is journaled with
// status refused, becomes last_run, counts as a failure and is called back; its exit code and
// error line stay, with a second clause where it could not be recorded. Black-box: the real CLI
// on temp dirs, callbacks to a real receiver on 127.0.0.1.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asNobody, collect, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { filesUnder, iniWith, journals, script } from '../helpers/phases.js';
import { httpStub, type HttpStub } from '../helpers/servers.js';

const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
const state = (box: Sandbox) => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
/** The error of a command: its stderr, one `bootstrap: ` line and nothing else (the callback's delivery says nothing). */
const errorOf = (stderr: string) => {
  assert.match(stderr, /^bootstrap: [^\n]*\n$/);
  return stderr;
};

/** A receiver keeping each request's raw body and headers. */
async function receiver(): Promise<HttpStub & { got: { body: any; raw: string; headers: Record<string, unknown> }[] }> {
  const got: { body: any; raw: string; headers: Record<string, unknown> }[] = [];
  const stub = await httpStub((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      got.push({ body: JSON.parse(raw), raw, headers: req.headers });
      res.end();
    });
  });
  return { ...stub, got };
}

/** A provisioned sandbox (one success) whose runs call back `url` ([callback] url unless `flagOnly`). */
async function provisioned(url: string | null, phasesKeys: Record<string, string> = {}): Promise<{ box: Sandbox; success: any }> {
  const box = sandbox(iniWith(phasesKeys, url ? `\n[callback]\nurl = ${url}\n` : ''));
  script(join(box.phasesDir, 'configure.d', '10-ok'), 'exit 0');
  const r = await box.run(['server.provision', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return { box, success: json(r) };
}

/** What every recorded refusal shows: its journal, last_run, the failure counted, the success kept. */
async function assertRecorded(box: Sandbox, o: { action: string; code: number; message: RegExp; success: any; failures: number }): Promise<any> {
  const journal = json(await box.run(['runs.show', 'last', '--json']));
  assert.equal(journal.status, 'refused');
  assert.equal(journal.action, o.action);
  assert.equal(journal.exit_code, o.code);
  assert.deepEqual(journal.phases, []);
  assert.equal(journal.failure.kind, 'refused');
  assert.match(journal.failure.message, o.message);
  assert.ok(Date.parse(journal.started_at) <= Date.parse(journal.finished_at));
  const status = json(await box.run(['server.status', '--json']));
  assert.equal(status.last_run.id, journal.id);
  assert.equal(status.last_run.status, 'refused');
  assert.equal(status.last_run.exit_code, o.code);
  assert.equal(status.failed_runs_since_success, o.failures);
  assert.equal(status.last_success.id, o.success.id, 'the last success is kept');
  assert.equal(journal.failed_runs_since_success, o.failures);
  assert.match((await box.run(['server.status'])).stdout, new RegExp(`^last run: +${o.action} refused .* ago \\(\\S+\\) \\(exit ${o.code}, refused before its first step, run ${journal.id}\\)$`, 'm'));
  assert.match((await box.run(['runs.list'])).stdout, new RegExp(`^${journal.id} +${o.action} +refused +[\\d.]+ s {2}exit ${o.code}: `, 'm'));
  assert.match((await box.run(['runs.show'])).stdout, /^refused before its first step: /m);
  const blame = await box.run(['runs.blame']);
  assert.equal(blame.code, 0, blame.stderr);
  assert.match(blame.stdout, /refused before its first step: nothing ran/);
  return journal;
}

/** A refused run's callback: status refused, the journal's id, the published schema. */
function assertCalledBack(body: any, journal: any): void {
  assert.deepEqual(validate(schema, body), []);
  assert.equal(body.status, 'refused');
  assert.equal(body.id, journal.id);
  assert.equal(body.exit_code, journal.exit_code);
  assert.equal(body.failure.kind, 'refused');
  assert.deepEqual(body.phases, []);
}

describe('refused runs are runs', () => {
  it('77 an untrusted step (group-writable file, then phases dir): journaled, last_run, counted, called back to --callback-url; the error line as before', async () => {
    const r = await receiver();
    const { box, success } = await provisioned(null);
    try {
      const step = join(box.phasesDir, 'configure.d', '10-ok');
      chmodSync(step, 0o775);
      const expected = json(await box.run(['server.refresh', '--dry-run', '--json'])).refusal;
      assert.match(expected, /^refusing to run 1 file: .*10-ok: writable by its group/);
      assert.equal(journals(box.stateDir).length, 1, 'a dry run is no refusal');
      const refused = await box.run(['server.refresh', '--callback-url', `${r.url}/flag`]);
      assert.equal(refused.code, 77);
      assert.equal(errorOf(refused.stderr), `bootstrap: ${expected}\n`, 'the same one line');
      const journal = await assertRecorded(box, { action: 'refresh', code: 77, message: /writable by its group/, success, failures: 1 });
      assert.equal(r.got.length, 1);
      assertCalledBack(r.got[0]!.body, journal);
      assert.equal(r.got[0]!.body.last_success.id, success.id);

      chmodSync(step, 0o755);
      chmodSync(box.phasesDir, 0o775);
      const dir = await box.run(['server.provision', '--json', '--callback-url', `${r.url}/flag`]);
      assert.equal(dir.code, 77);
      assert.match(json(dir).error.message, /writable by its group/);
      await assertRecorded(box, { action: 'provision', code: 77, message: /writable by its group/, success, failures: 2 });
      assert.equal(r.got.at(-1)!.body.failed_runs_since_success, 2);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('a plan refusal (78: a step without #!) and a state refusal (73: run.lock is a directory), called back to [callback] url', async () => {
    const r = await receiver();
    const { box, success } = await provisioned(`${r.url}/hook`);
    try {
      writeFileSync(join(box.phasesDir, 'configure.d', '20-plain'), 'echo no shebang\n', { mode: 0o755 });
      const plan = await box.run(['server.mode', 'active']);
      assert.equal(plan.code, 78);
      assert.match(errorOf(plan.stderr), /^bootstrap: refusing to run 1 file: .*20-plain: .*\n$/);
      const journal = await assertRecorded(box, { action: 'mode', code: 78, message: /20-plain/, success, failures: 1 });
      assertCalledBack(r.got.at(-1)!.body, journal);
      rmSync(join(box.phasesDir, 'configure.d', '20-plain'));

      mkdirSync(join(box.stateDir, 'run.lock'));
      const lock = await box.run(['product.upgrade', 'haproxy', '--to', '2.8']);
      assert.equal(lock.code, 73);
      assert.match(errorOf(lock.stderr), /^bootstrap: cannot write lock owner .*run\.lock.*\n$/);
      const second = await assertRecorded(box, { action: 'upgrade', code: 73, message: /run\.lock/, success, failures: 2 });
      assert.equal(second.product, 'haproxy');
      assertCalledBack(r.got.at(-1)!.body, second);
      assert.equal(r.got.length, 3, 'the success and two refusals');
      rmSync(join(box.stateDir, 'run.lock'), { recursive: true });
      const fixed = await box.run(['server.refresh', '--json']);
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.equal(state(box).failed_runs_since_success, 0, 'a success resets the count');
      // Within one second of the refusals too, the last journal is the newest run's.
      assert.equal(json(await box.run(['runs.show', 'last', '--json'])).id, json(fixed).id);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('73 a broken state.json: the error says the refusal could not be recorded in it; journaled and called back; state.json untouched', async () => {
    const r = await receiver();
    const { box } = await provisioned(`${r.url}/hook`);
    try {
      const file = join(box.stateDir, 'state.json');
      writeFileSync(file, '{"schema": 1, "mode":');
      const res = await box.run(['server.refresh']);
      assert.equal(res.code, 73);
      const lines = [errorOf(res.stderr).trimEnd()];
      assert.match(lines[0]!, /^bootstrap: state file .*state\.json is broken: .* \(fix it by hand or restore a backup; bootstrap never resets it\); the refusal could not be recorded in state\.json, for the same reason; it is journaled as run (\S+)$/);
      const id = /journaled as run (\S+)$/.exec(lines[0]!)![1]!;
      assert.equal(readFileSync(file, 'utf8'), '{"schema": 1, "mode":');
      const journal = json(await box.run(['runs.show', id, '--json']));
      assert.equal(journal.status, 'refused');
      assert.equal(journal.exit_code, 73);
      assert.equal(journal.failed_runs_since_success, undefined, 'not known: state.json cannot be read');
      assertCalledBack(r.got.at(-1)!.body, journal);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('78 an invalid bootstrap.ini: recorded in the [server] state_dir of the raw ini, called back signed to its [callback] url, no other ini value anywhere', async () => {
    const r = await receiver();
    const box = sandbox();
    const stateDir = join(box.dir, 'from-ini');
    const secretFile = join(box.dir, 'callback.secret');
    writeFileSync(secretFile, 'k3y\n', { mode: 0o600 });
    const ini = (extra: string) =>
      iniWith({}, `\n[callback]\nurl = ${r.url}/hook\nsecret_file = ${secretFile}\n\n[product.vault]\nversion = 1\n\n[product.vault.settings]\ntoken = secret:s3cr3t-t0ken\n${extra}`).replace('[server]\n', `[server]\nstate_dir = ${stateDir}\n`);
    const env = { BOOTSTRAP_STATE_DIR: '' }; // the ini says where
    script(join(box.phasesDir, 'configure.d', '10-ok'), 'exit 0');
    try {
      writeFileSync(box.config, ini(''));
      const ok = await box.run(['server.provision', '--json'], { env });
      assert.equal(ok.code, 0, ok.stderr);
      writeFileSync(box.config, ini('\n[heartbeat.bad]\ntype = nosuch\n'));
      const res = await box.run(['server.refresh'], { env });
      assert.equal(res.code, 78);
      assert.match(errorOf(res.stderr), /^bootstrap: \[heartbeat\.bad\] [^\n]*\n$/);
      const status = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
      assert.equal(status.last_run.status, 'refused');
      assert.equal(status.last_run.exit_code, 78);
      assert.equal(status.failed_runs_since_success, 1);
      assert.equal(status.last_success.id, json(ok).id);
      const got = r.got.at(-1)!;
      assert.equal(got.body.status, 'refused');
      assert.equal(got.body.server, hostname(), 'the server is the host name: [server] name is not read from an invalid ini');
      assert.deepEqual(validate(schema, got.body), []);
      assert.equal(got.headers['x-bootstrap-signature-256'], `sha256=${createHmac('sha256', 'k3y').update(got.raw).digest('hex')}`);
      for (const [path, text] of filesUnder(stateDir)) assert.ok(!text.includes('s3cr3t-t0ken'), `${path} holds no value of the ini`);
      assert.ok(!got.raw.includes('s3cr3t-t0ken'));
      // Fixed: the next run goes on, and sees the refusal counted.
      writeFileSync(box.config, ini(''));
      const next = json(await box.run(['server.refresh', '--json'], { env }));
      assert.equal(next.status, 'success');
      assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'runs', `${next.id}.json`), 'utf8')).failed_runs_since_success, 0);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('78 an ini that cannot be read safely and no --state-dir: the error says the refusal could not be recorded and why', async () => {
    const box = sandbox(`${iniWith()}\n[server]\nname = twice\n`);
    try {
      const res = await box.run(['server.provision'], { env: { BOOTSTRAP_STATE_DIR: '' } });
      assert.equal(res.code, 78);
      assert.match(res.stderr, /^bootstrap: .*section \[server\] appears twice.*; the refusal could not be recorded: the state dir is not known: .*bootstrap\.ini cannot be read safely .*; pass --state-dir or set BOOTSTRAP_STATE_DIR\n$/);
      // With --state-dir it is recorded there.
      const given = await box.run(['server.provision', '--state-dir', box.stateDir], { env: { BOOTSTRAP_STATE_DIR: '' } });
      assert.equal(given.code, 78);
      assert.doesNotMatch(given.stderr, /could not be recorded/);
      assert.equal(state(box).last_run.status, 'refused');
      assert.equal(journals(box.stateDir).length, 1);
    } finally {
      box.cleanup();
    }
  });

  it('a state dir that cannot be written (a file; as uid 65534, root\'s): same exit code, and the error says nothing could be recorded', async () => {
    const box = sandbox(iniWith());
    try {
      script(join(box.phasesDir, 'configure.d', '10-ok'), 'exit 0');
      writeFileSync(box.stateDir, 'not a dir');
      const file = await box.run(['server.provision']);
      assert.equal(file.code, 73);
      assert.match(file.stderr, /^bootstrap: .*state is not a directory; the refusal could not be recorded, for the same reason\n$/);
      rmSync(box.stateDir);

      // As nobody: the config readable, the state dir root's.
      mkdirSync(box.stateDir, { mode: 0o700 });
      chmodSync(box.dir, 0o755);
      chmodSync(box.config, 0o644);
      const nobody = await box.run(['server.provision'], { prefix: asNobody });
      assert.equal(nobody.code, 77, nobody.stderr);
      assert.match(nobody.stderr, /^bootstrap: .*state belongs to uid 0, not to the user running bootstrap \(uid 65534\).*; the refusal could not be recorded, for the same reason\n$/);
      assert.deepEqual(journals(box.stateDir), []);
    } finally {
      box.cleanup();
    }
  });

  it('not refusals: 75 (the lock is held), 65 (an unknown mode), 64 (usage), a dry run: no journal, no callback', async () => {
    const r = await receiver();
    const { box } = await provisioned(`${r.url}/hook`);
    try {
      const gate = join(box.dir, 'gate');
      script(join(box.phasesDir, 'configure.d', '10-ok'), `while [ ! -e "${gate}" ]; do sleep 0.05; done`);
      const holder = box.start(['server.refresh', '-q']);
      const done = collect(holder, 120_000);
      const deadline = Date.now() + 60_000;
      while (journals(box.stateDir).length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      const held = await box.run(['server.refresh']);
      assert.equal(held.code, 75, held.stderr);
      writeFileSync(gate, '');
      assert.equal((await done).code, 0);
      assert.equal((await box.run(['server.mode', 'nosuch'])).code, 65);
      assert.equal((await box.run(['server.provision', '--bogus'])).code, 64);
      chmodSync(join(box.phasesDir, 'configure.d', '10-ok'), 0o777);
      assert.equal((await box.run(['server.provision', '--dry-run'])).code, 77);
      assert.equal(journals(box.stateDir).length, 2, 'the provision and the refresh that held the lock');
      assert.equal(state(box).failed_runs_since_success, 0);
      assert.equal(r.got.length, 2);
    } finally {
      box.cleanup();
      await r.close();
    }
  });
});
