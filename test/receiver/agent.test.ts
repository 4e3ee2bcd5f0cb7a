// The real agent (bin/bootstrap) calling back into a running receiver (SQLite) on 127.0.0.1:
// what each kind of run leaves in the fleet view, the server view and /metrics; a paused run and
// its resume (one run, two deliveries); a callback stored but not answered before a SIGKILL,
// delivered again from the agent's outbox and stored once; a wrong key (401, outbox/dead/).
// One receiver for the file (Node 24 start ~0.3 s); about 10 agent runs, one waiting 5 s for an
// answer that never comes: ~15 s on 2 loaded cores.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { json, type Sandbox } from '../helpers/cli.js';
import { script } from '../helpers/phases.js';
import { agentFor, secretDir, startReceiver, type Receiver } from '../helpers/receiver.js';

const key = 'fleet-key-for-tests';
const files = (dir: string) => {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
};

async function waitFor(what: string, done: () => boolean, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('the receiver and the real agent (SQLite)', () => {
  const secrets = secretDir(key);
  const db = `sqlite:${join(secrets.dir, 'receiver.db')}`;
  let r: Receiver;
  const boxes: Sandbox[] = [];
  const agent = (name: string, ...rest: [Record<string, string | number>?, string?, number?]) => {
    const box = agentFor(name, r.callbackUrl, key, ...rest);
    boxes.push(box);
    return box;
  };

  before(async () => {
    r = await startReceiver({ db, secretFile: secrets.secretFile });
  });
  after(async () => {
    await r?.kill();
    for (const b of boxes) b.cleanup();
    secrets.cleanup();
  });

  it('success, failure, refused and a checkup: each server counted in its state, its runs newest first, the callbacks counted in /metrics', async () => {
    const ok = agent('web-ok');
    assert.equal((await ok.run(['server.provision'])).code, 0);
    const bad = agent('web-bad');
    script(join(bad.phasesDir, 'configure.d', '20-fail'), 'for i in $(seq 1 30); do echo "line $i"; done; echo "disk full" >&2; exit 5');
    const failed = await bad.run(['server.provision', '--json']);
    assert.equal(failed.code, 1, failed.stderr);
    const refused = agent('web-refused');
    chmodSync(join(refused.phasesDir, 'configure.d', '10-ok'), 0o775);
    const refusal = await refused.run(['server.provision']);
    assert.equal(refusal.code, 77, refusal.stderr);
    assert.equal((await ok.run(['heartbeat.checkup', '--report'])).code, 0);

    const fleet = (await r.get('/api/fleet')).json;
    const state = (name: string) => fleet.servers.find((s: any) => s.server === name)?.state;
    assert.deepEqual([state('web-ok'), state('web-bad'), state('web-refused')], ['unchanged', 'failed', 'failed']);
    assert.equal(fleet.counts.total, 3);
    assert.equal(fleet.counts.failed, 2);
    assert.equal(fleet.counts.unchanged, 1);
    assert.equal(fleet.unresponsive_after_s, 3600);
    const okRow = fleet.servers.find((s: any) => s.server === 'web-ok');
    assert.equal(okRow.last_kind, 'checkup');
    assert.equal(okRow.last_run.action, 'provision');
    assert.equal(okRow.last_run.status, 'success');
    assert.deepEqual(okRow.products, { deepfiler: '1.4.0', haproxy: '2.6' });
    assert.equal(fleet.servers.find((s: any) => s.server === 'web-refused').last_run.status, 'refused');

    const badView = (await r.get('/api/servers/web-bad?runs=5')).json;
    assert.equal(badView.runs.length, 1);
    assert.equal(badView.runs[0].id, json(failed).id);
    assert.equal(badView.runs[0].failure.step, '20-fail');
    // The failure's output tail: the step's last 20 lines, shown on the server's page.
    const tail = badView.runs[0].failure.output_tail.split('\n');
    assert.deepEqual([tail.length, tail[0], tail.at(-1)], [20, 'line 12', 'disk full']);
    assert.match((await r.get('/servers/web-bad')).text, /<pre class="output">line 12\n[^]*disk full<\/pre>/);
    const refusedView = (await r.get('/api/servers/web-refused')).json;
    assert.equal(refusedView.runs[0].failure.kind, 'refused');
    assert.ok(!('output_tail' in refusedView.runs[0].failure), 'a failure with no output has no output_tail');
    assert.equal(badView.server.failed_runs_since_success, 1);
    const okView = (await r.get('/api/servers/web-ok')).json;
    assert.deepEqual(okView.runs.map((x: any) => x.kind), ['checkup', 'run']);
    assert.equal((await r.get('/api/servers/nobody')).status, 404);
    assert.match((await r.get('/servers/web-bad')).text, /20-fail/);
    assert.match((await r.get('/')).text, /web-refused/);

    const metrics = (await r.get('/metrics')).text;
    assert.match(metrics, /^bootstrap_receiver_servers\{state="failed"\} 2$/m);
    assert.match(metrics, /^bootstrap_receiver_callbacks_received_total\{kind="run",status="refused"\} 1$/m);
    assert.match(metrics, /^bootstrap_receiver_callbacks_received_total\{kind="checkup",status="success"\} 1$/m);
    try {
      execFileSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8', timeout: 30_000 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // promtool absent: the regexes above stand
    }
  });

  it('a run paused for a reboot, then resumed: state rebooting, then one run (same id, two deliveries) with the final status', async () => {
    const box = agent('db-reboot', { reboot_command: '/bin/true' });
    const bootFile = join(box.dir, 'boot_id');
    writeFileSync(bootFile, 'boot-1\n');
    script(join(box.phasesDir, 'configure.d', '20-kernel'), `# bootstrap: may-reboot\n[ -e "${box.dir}/asked" ] || { touch "${box.dir}/asked"; echo "new kernel" > "$BOOTSTRAP_REBOOT_FILE"; }`);
    const env = { BOOTSTRAP_TEST_BOOT_ID_FILE: bootFile };
    const paused = await box.run(['server.provision', '--json'], { env });
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal((await r.get('/api/fleet')).json.servers.find((s: any) => s.server === 'db-reboot').state, 'rebooting');
    writeFileSync(bootFile, 'boot-2\n');
    const resumed = await box.run(['server.resume'], { env });
    assert.equal(resumed.code, 0, resumed.stderr);
    const view = (await r.get('/api/servers/db-reboot')).json;
    assert.equal(view.runs.length, 1, 'the resumed run updated its row');
    assert.equal(view.runs[0].id, json(paused).id);
    assert.equal(view.runs[0].status, 'success');
    assert.equal(view.server.state, 'unchanged');
    const metrics = (await r.get('/metrics')).text;
    assert.match(metrics, /^bootstrap_receiver_callbacks_received_total\{kind="run",status="rebooting"\} 1$/m);
  });

  it('stored but not answered, then SIGKILL: the agent keeps it in its outbox; callback.flush delivers it again to the restarted receiver, stored once', async () => {
    const port = r.port;
    await r.kill();
    r = await startReceiver({ db, secretFile: secrets.secretFile, port, env: { BOOTSTRAP_RECEIVER_TEST_STALL_AFTER_STORE: '1' } });
    // The agent gives up after its [callback] timeout (5 s: what it waits here) whether or not the
    // receiver has stored the callback yet: on a loaded machine it may not have; its log says when.
    const box = agent('web-again', {}, '', 5);
    const run = await box.run(['server.provision', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(files(join(box.stateDir, 'outbox')).length, 1, 'no answer: kept in the outbox');
    await waitFor('the receiver stored it (and did not answer)', () => /POST \/callback 200 .*stalled \(test seam\)/.test(r.output()));
    await r.kill();
    r = await startReceiver({ db, secretFile: secrets.secretFile, port });
    assert.equal((await r.get('/api/servers/web-again')).json.runs.length, 1, 'committed before the kill');
    const flush = await box.run(['callback.flush', '--json']);
    assert.equal(flush.code, 0, flush.stderr);
    assert.deepEqual(json(flush).delivered, [json(run).id]);
    assert.deepEqual(files(join(box.stateDir, 'outbox')), []);
    assert.equal((await r.get('/api/servers/web-again')).json.runs.length, 1, 'stored once');
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_callbacks_duplicate_total 1$/m);
    assert.doesNotMatch(r.output(), new RegExp(key), 'the key is never logged');
  });

  it('a wrong key: 401, which the agent takes as refused for good (outbox/dead/); nothing stored, counted as a signature failure', async () => {
    const box = agentFor('web-forged', r.callbackUrl, 'not-the-key');
    boxes.push(box);
    assert.equal((await box.run(['server.provision'])).code, 0);
    assert.equal(files(join(box.stateDir, 'outbox', 'dead')).length, 1);
    assert.equal((await r.get('/api/servers/web-forged')).status, 404);
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_signature_failures_total 1$/m);
    assert.match(r.output(), /POST \/callback 401 .*refused \(signature\): wrong/);
  });
});
