// server.verify: each applicable step's .if and .check under the run lock, explorers first, never
// a step, backout or error.d; ok / drift / no check / skipped per step; exit 0, 2, 1; journaled
// as action verify, kept as last_verify (last_run untouched), called back with --report. Real
// scripts in temp dirs, the real CLI, a real HTTP receiver on 127.0.0.1.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, ended, json, root, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, journals, readLines, script, withBox } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';

const state = (box: Sandbox) => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));

/** Waits (bounded) until `ready` holds. */
async function until(what: string, ready: () => boolean, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A tree where every step, backout and error.d file records itself in $LOG: 10-plain (no
 * companions), 20-conf (a check that passes and says what it sees), 30-drift (a check that fails
 * while $LOG.drifted exists; a backout), 40-off (an .if that skips it, a check that must not
 * run), 50-on (an .if that lets it run, no check); an explorer and an environment.d file.
 */
function tree(box: Sandbox): void {
  const p = box.phasesDir;
  const step = (name: string, extra = '') => script(join(p, 'configure.d', name), `echo "step ${name}" >> "$LOG"\n${extra}`);
  step('10-plain');
  step('20-conf');
  script(join(p, 'configure.d', '20-conf.check'), 'echo "check 20-conf $BOOTSTRAP_ACTION $BOOTSTRAP_PHASE colour=$BOOTSTRAP_FACT_COLOUR env=$FROM_ENV_D" >> "$LOG"');
  step('30-drift');
  script(join(p, 'configure.d', '30-drift.check'), 'echo "check 30-drift" >> "$LOG"\nif [ -e "$LOG.drifted" ]; then echo "maxconn is 100, not 4096"; exit 1; fi');
  script(join(p, 'configure.d', '30-drift.backout'), 'echo "backout 30-drift" >> "$LOG"');
  step('40-off');
  script(join(p, 'configure.d', '40-off.if'), 'echo "if 40-off" >> "$LOG"\necho "not in this mode"; exit 1');
  script(join(p, 'configure.d', '40-off.check'), 'echo "check 40-off" >> "$LOG"');
  step('50-on');
  script(join(p, 'configure.d', '50-on.if'), 'echo "if 50-on" >> "$LOG"');
  script(join(p, 'error.d', '10-e'), 'echo "error.d" >> "$LOG"');
  script(join(p, 'explorer.d', '10-colour'), 'echo "explorer colour" >> "$LOG"; echo blue');
  mkdirSync(join(p, 'environment.d'), { recursive: true });
  writeFileSync(join(p, 'environment.d', '10-env'), 'export FROM_ENV_D=sourced\n');
}

describe('server.verify', () => {
  it(
    'ok, drift, no check, skipped; exit 2 on drift, 0 without; nothing but explorers, .if and .check runs; journal, last_verify, last_run untouched',
    withBox(iniWith(), async (box, log) => {
      tree(box);
      const env = { LOG: log };
      const provision = await box.run(['server.provision'], { env });
      assert.equal(provision.code, 0, provision.stderr);
      const before = state(box);
      rmSync(log);

      writeFileSync(`${log}.drifted`, '');
      const r = await box.run(['server.verify'], { env });
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stdout.split('\n');
      assert.deepEqual(lines.slice(0, 5), [
        'no check  configure/10-plain',
        'ok        configure/20-conf',
        'drift     configure/30-drift: maxconn is 100, not 4096 (exit 1)',
        'skipped   configure/40-off: not in this mode',
        'no check  configure/50-on',
      ]);
      assert.match(lines[5]!, /^verify drift: 5 steps: 1 ok, 1 drift, 2 no check, 1 skipped \(\d+\.\d s, run \d{8}T\d{6}Z-[0-9a-f]{6}\)$/);
      // Explorers first; then per step its .if, then its .check; no step, backout or error.d.
      assert.deepEqual(readLines(log), ['explorer colour', 'check 20-conf verify configure colour=blue env=sourced', 'check 30-drift', 'if 40-off', 'if 50-on']);

      const id = /run (\S+)\)/.exec(lines[5]!)![1]!;
      const after = state(box);
      assert.deepEqual(after.last_run, before.last_run, 'a verify is not a run: last_run untouched');
      assert.deepEqual(after.last_success ?? null, before.last_success ?? null);
      assert.equal(after.provisioned_at, before.provisioned_at);
      assert.deepEqual({ ...after.last_verify, finished_at: 'T' }, { id, finished_at: 'T', status: 'drift', drift: 1, ok: 1, no_check: 2, skipped: 1 });
      const facts = JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8'));
      assert.equal(facts.facts.colour, 'blue', 'a verify collects and stores the facts as a run does');

      const journal = json(await box.run(['runs.show', id, '--json']));
      assert.equal(journal.action, 'verify');
      assert.equal(journal.status, 'drift');
      assert.equal(journal.exit_code, 2);
      assert.deepEqual(journal.verify, { status: 'drift', ok: 1, drift: 1, no_check: 2, skipped: 1, error: 0 });
      assert.deepEqual(journal.failure, { phase: 'configure', step: '30-drift', kind: 'check', exit_code: 1, message: 'maxconn is 100, not 4096 (exit 1)' });
      const steps = journal.phases.find((p: any) => p.phase === 'configure').steps;
      assert.deepEqual(steps.map((s: any) => [s.name, s.verify]), [['10-plain', 'no check'], ['20-conf', 'ok'], ['30-drift', 'drift'], ['40-off', 'skipped'], ['50-on', 'no check']]);
      assert.match(steps[2].check.output_tail, /maxconn is 100/);
      assert.deepEqual(journal.backouts, []);
      assert.deepEqual(journal.error_steps, []);
      assert.match((await box.run(['runs.list'])).stdout, new RegExp(`^${id}  verify +drift .*configure/30-drift: maxconn is 100, not 4096 \\(exit 1\\)$`, 'm'));
      // runs.blame: the files that ran (explorer, .if, .check), not the steps, which did not.
      const blame = json(await box.run(['runs.blame', id, '--json']));
      // …and the agent's own wait for the run lock, as for a run.
      assert.deepEqual(blame.run.entries.map((e: any) => `${e.phase}/${e.name}`).sort(), ['agent/(lock wait)', 'configure/20-conf.check', 'configure/30-drift.check', 'configure/40-off.if', 'configure/50-on.if', 'explorer/10-colour']);

      rmSync(`${log}.drifted`);
      const ok = await box.run(['server.verify', '--json'], { env });
      assert.equal(ok.code, 0, ok.stderr);
      const out = json(ok);
      assert.equal(out.status, 'ok');
      assert.deepEqual(out.summary, { ok: 2, drift: 0, no_check: 2, skipped: 1, error: 0 });
      assert.deepEqual(out.steps[2], { phase: 'configure', step: '30-drift', result: 'ok', message: null });
      assert.equal(out.failure, null);
      assert.equal(state(box).last_verify.status, 'ok');
      assert.deepEqual(state(box).last_run, before.last_run);
      assert.ok(!readLines(log).some((l) => /^(step|backout|error\.d)/.test(l)), readLines(log).join('\n'));
    }),
  );

  it(
    'a check that times out, or an .if that fails otherwise than exit 1: exit 1, status error; the steps after are still checked',
    withBox(iniWith({ script_timeout: 1, kill_grace: 1 }), async (box, log) => {
      const d = join(box.phasesDir, 'configure.d');
      script(join(d, '10-slow'), 'exit 0');
      script(join(d, '10-slow.check'), 'echo $$ > "$LOG.pid"; sleep 30');
      script(join(d, '20-odd'), 'exit 0');
      script(join(d, '20-odd.if'), 'echo "cannot tell"; exit 3');
      script(join(d, '30-fine'), 'echo "step ran" >> "$LOG"');
      script(join(d, '30-fine.check'), 'exit 0');
      const t0 = Date.now();
      const r = await box.run(['server.verify', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1, r.stderr);
      assert.ok(Date.now() - t0 < 20_000, 'bounded by script_timeout');
      const out = json(r);
      assert.equal(out.status, 'error');
      assert.deepEqual(out.steps.map((s: any) => [s.step, s.result]), [['10-slow', 'error'], ['20-odd', 'error'], ['30-fine', 'ok']]);
      assert.match(out.steps[0].message, /10-slow\.check: timed out after 1\.\d s/);
      assert.match(out.steps[1].message, /exit 3/);
      assert.deepEqual(out.summary, { ok: 1, drift: 0, no_check: 0, skipped: 0, error: 2 });
      assert.equal(out.failure.kind, 'timeout');
      assert.equal(state(box).last_verify.status, 'error');
      assert.equal(state(box).last_run, null, 'no run was recorded');
      assert.deepEqual(readLines(log), [], 'no step ran');
      const pid = Number(readFileSync(`${log}.pid`, 'utf8'));
      assert.throws(() => process.kill(pid, 0), 'the timed-out check is gone');
    }),
  );

  it(
    'a failing explorer, or environment.d: exit 1 before any check, the journal says where',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'explorer.d', '10-broken'), 'exit 4');
      script(join(box.phasesDir, 'configure.d', '10-a'), 'exit 0');
      script(join(box.phasesDir, 'configure.d', '10-a.check'), 'echo "check ran" >> "$LOG"');
      const r = await box.run(['server.verify'], { env: { LOG: log } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /^could not verify: explorer\/10-broken: exit 4$/m);
      assert.match(r.stdout, /^verify error: 0 steps: .*: could not check explorer\/10-broken: exit 4$/m);
      assert.deepEqual(readLines(log), []);
      const j = json(await box.run(['runs.show', 'last', '--json']));
      assert.deepEqual([j.action, j.status, j.failure.phase, j.failure.step], ['verify', 'failure', 'explorer', '10-broken']);
      // environment.d that fails: the same, named.
      rmSync(join(box.phasesDir, 'explorer.d'), { recursive: true });
      script(join(box.phasesDir, 'environment.d', '10-bad'), 'return 3');
      const env = await box.run(['server.verify', '--json'], { env: { LOG: log } });
      assert.equal(env.code, 1, env.stderr);
      assert.deepEqual([json(env).status, json(env).failure.phase, json(env).failure.step], ['error', 'configure', 'environment.d/10-bad']);
      assert.match(json(env).failure.message, /exit 3/);
      assert.deepEqual(readLines(log), []);
    }),
  );

  it(
    'a dirty check is not prevented (a .check must not change the server: docs/pipeline.md says so)',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'exit 0');
      script(join(box.phasesDir, 'configure.d', '10-a.check'), 'echo "written by a check" > "$LOG.dirty"');
      const r = await box.run(['server.verify'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(`${log}.dirty`, 'utf8'), 'written by a check\n');
    }),
  );

  it(
    'under the run lock: 75 naming the holder while a run goes on; --wait waits for it; a run waiting for its reboot: 75',
    withBox(iniWith({ reboot_command: 'true' }), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-hold'), 'echo started >> "$LOG"\nwhile [ ! -e "$LOG.go" ]; do sleep 0.05; done');
      script(join(box.phasesDir, 'configure.d', '10-hold.check'), 'exit 0');
      const run = box.start(['server.provision'], { env: { LOG: log } });
      const runDone = collect(run);
      await until('the run holds the lock', () => readLines(log).includes('started'));
      const held = await box.run(['server.verify'], { env: { LOG: log } });
      assert.equal(held.code, 75);
      assert.match(held.stderr, new RegExp(`^bootstrap: server\\.provision is already running \\(pid ${run.pid}, .*lock ${box.stateDir}/run\\.lock\\); try again later or use --wait\\n$`));
      const waiter = box.start(['server.verify', '--wait=60'], { env: { LOG: log } });
      let said = '';
      waiter.stderr!.on('data', (d: Buffer) => (said += d.toString()));
      const waiting = collect(waiter);
      await until('the verify waits for the lock', () => /waiting for the run lock: .*server\.provision/.test(said));
      writeFileSync(`${log}.go`, '');
      assert.equal((await runDone).code, 0);
      const waited = await waiting;
      assert.equal(waited.code, 0, waited.stderr);
      assert.match(waited.stdout, /^ok +configure\/10-hold$/m);

      // A run paused for its reboot: the server is mid-change, a verify refuses as run commands do.
      script(join(box.phasesDir, 'configure.d', '20-reboot'), 'echo "new kernel" > "$BOOTSTRAP_REBOOT_FILE"');
      const paused = await box.run(['server.refresh'], { env: { LOG: log } });
      assert.equal(paused.code, 0, paused.stderr);
      const refused = await box.run(['server.verify'], { env: { LOG: log } });
      assert.equal(refused.code, 75);
      assert.match(refused.stderr, /waits for the reboot configure\/20-reboot asked for .*\(new kernel\)/);
    }),
  );

  it(
    'a SIGKILLed verify: the next command ends its checks and takes the lock over; no run is recorded for it',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'exit 0');
      script(join(box.phasesDir, 'configure.d', '10-a.check'), 'echo $$ > "$LOG.pid"; sleep 60');
      const first = box.start(['server.verify'], { env: { LOG: log } });
      const firstDone = collect(first);
      await until('the check runs', () => readLines(`${log}.pid`).length === 1);
      const check = Number(readFileSync(`${log}.pid`, 'utf8'));
      first.kill('SIGKILL');
      await firstDone;
      script(join(box.phasesDir, 'configure.d', '10-a.check'), 'exit 0');
      const next = await box.run(['server.verify'], { env: { LOG: log } });
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stderr, /taking over the run lock from server\.verify \(pid \d+/);
      assert.ok(await ended(check, 5000), 'the check the killed verify left running was ended');
      assert.equal(state(box).last_run, null, 'a dead verify is not recorded as a failed run');
      assert.equal(journals(box.stateDir).length, 1, 'only the finished verify has a journal');
    }),
  );

  it(
    '--report: one signed callback of kind verify, valid against the published schema; --callback-url alone is a usage error',
    withBox(iniWith(), async (box, log) => {
      const received: { headers: IncomingMessage['headers']; body: string }[] = [];
      const stub = await httpStub((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          received.push({ headers: req.headers, body });
          res.end();
        });
      });
      try {
        writeFileSync(join(box.dir, 'callback.secret'), 'v3rify-k3y\n');
        chmodSync(join(box.dir, 'callback.secret'), 0o600);
        writeFileSync(box.config, `${readFileSync(box.config, 'utf8')}\n[callback]\nurl = ${stub.url}/hook\nsecret_file = ${join(box.dir, 'callback.secret')}\ntimeout = 5\n`);
        tree(box);
        writeFileSync(`${log}.drifted`, '');
        const r = await box.run(['server.verify', '--report', '--label', 'audit-7', '--json'], { env: { LOG: log } });
        assert.equal(r.code, 2, r.stderr);
        assert.equal(received.length, 1);
        const got = received[0]!;
        assert.equal(got.headers['x-bootstrap-signature-256'], `sha256=${createHmac('sha256', 'v3rify-k3y').update(got.body).digest('hex')}`);
        assert.equal(got.headers['x-bootstrap-delivery'], json(r).id);
        const body = JSON.parse(got.body);
        assert.deepEqual([body.kind, body.action, body.status, body.exit_code, body.label, body.id], ['verify', 'verify', 'drift', 2, 'audit-7', json(r).id]);
        assert.deepEqual({ ...body.verify, steps: undefined }, { status: 'drift', ok: 1, drift: 1, no_check: 2, skipped: 1, error: 0, steps: undefined });
        assert.deepEqual(body.verify.steps[2], { phase: 'configure', step: '30-drift', result: 'drift', message: 'maxconn is 100, not 4096 (exit 1)' });
        assert.equal(body.facts.colour, 'blue');
        const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
        assert.deepEqual(validate(schema, body), []);
        // Without --report nothing is sent; --callback-url means nothing without it.
        assert.equal((await box.run(['server.verify'], { env: { LOG: log } })).code, 2);
        assert.equal(received.length, 1);
        const usage = await box.run(['server.verify', '--callback-url', `${stub.url}/other`]);
        assert.equal(usage.code, 64);
        assert.match(usage.stderr, /--callback-url is where --report sends the outcome/);
        assert.deepEqual(readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json')), [], 'delivered: nothing waits');
      } finally {
        await stub.close();
      }
    }),
  );

  it(
    'help lists its own options first, with examples; completion knows its flags',
    withBox(iniWith(), async (box) => {
      const help = await box.run(['server.verify', '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.ok(help.stdout.indexOf('server.verify options:') < help.stdout.indexOf('Global options:'), help.stdout);
      assert.match(help.stdout, /^  bootstrap server\.verify --report --wait=300 -q$/m);
      const flags = (await box.run(['completion', '--words', 'flags', 'server.verify'])).stdout.split('\n');
      for (const f of ['--report', '--wait', '--callback-url', '--label']) assert.ok(flags.includes(f), f);
      assert.match((await box.run(['--help'])).stdout, /server\.verify/);
    }),
  );
});
