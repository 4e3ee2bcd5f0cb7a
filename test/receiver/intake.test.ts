// What the receiver refuses, posted straight to it: no or a wrong signature (401), a body over
// --max-body (413), signed but not JSON or not the schema (400); a redelivery (same delivery id)
// acknowledged and stored once; a server's own key from --secrets-dir; flags checked at start.
// One receiver; ~6 s (the 408 waits for its 2 s timeout; the launcher and refusals spawn Nodes).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nodeBinary, nodeVersions } from '../helpers/node-bins.js';
import { callbackBody, receiverBin, secretDir, sign, startReceiver, type Receiver } from '../helpers/receiver.js';

const key = 'intake-fleet-key';

describe('what the receiver refuses and what it stores once', () => {
  const secrets = secretDir(key);
  const keysDir = join(secrets.dir, 'keys');
  let r: Receiver;

  before(async () => {
    mkdirSync(keysDir, { mode: 0o700 });
    writeFileSync(join(keysDir, 'own-key'), 'the-servers-own-key\n', { mode: 0o600 });
    // Key files that are there but cannot serve: never the fleet key instead.
    writeFileSync(join(keysDir, 'empty-key'), '\n', { mode: 0o600 });
    mkdirSync(join(keysDir, 'dir-key'));
    writeFileSync(join(keysDir, 'open-key'), 'an-exposed-key\n');
    chmodSync(join(keysDir, 'open-key'), 0o644);
    r = await startReceiver({ db: `sqlite:${join(secrets.dir, 'r.db')}`, secretFile: secrets.secretFile, args: ['--secrets-dir', keysDir, '--max-body', '8KiB', '--request-timeout', '2s'] });
  });
  after(async () => {
    await r?.kill();
    secrets.cleanup();
  });

  it('401 without a signature or with a wrong one; 413 over --max-body (before any key is tried); 400 for signed non-JSON and for a body outside the schema', async () => {
    const body = JSON.stringify(callbackBody('web-1'));
    assert.equal((await r.post(body, {})).status, 401);
    assert.equal((await r.post(body, { 'x-bootstrap-signature-256': sign('another-key', body) })).status, 401);
    assert.equal((await r.post(body, { 'x-bootstrap-signature-256': 'sha256=zz' })).status, 401);
    const big = JSON.stringify(callbackBody('web-1', { label: 'x'.repeat(10_000) }));
    assert.equal((await r.post(big, { 'x-bootstrap-signature-256': sign(key, big) })).status, 413);
    const notJson = '{"schema": "bootstrap.callback",';
    const bad = await r.post(notJson, { 'x-bootstrap-signature-256': sign(key, notJson) });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /^not JSON/);
    const outside = JSON.stringify(callbackBody('web-1', { status: 'fine' }));
    const invalid = await r.post(outside, { 'x-bootstrap-signature-256': sign(key, outside) });
    assert.equal(invalid.status, 400);
    assert.match(invalid.json.error, /\$\.status: "fine" is not one of/);
    assert.equal((await r.get('/api/fleet')).json.counts.total, 0, 'nothing stored');
    const metrics = (await r.get('/metrics')).text;
    assert.match(metrics, /^bootstrap_receiver_signature_failures_total 3$/m);
    assert.match(metrics, /^bootstrap_receiver_callbacks_refused_total\{reason="too_large"\} 1$/m);
    assert.match(metrics, /^bootstrap_receiver_callbacks_refused_total\{reason="malformed"\} 1$/m);
    assert.match(metrics, /^bootstrap_receiver_callbacks_refused_total\{reason="invalid"\} 1$/m);
  });

  it('the same delivery twice: 200 both times, stored once; a server with its own key: that key, not the fleet one; an unknown field accepted', async () => {
    const body = JSON.stringify(callbackBody('web-2'));
    const headers = { 'x-bootstrap-signature-256': sign(key, body), 'x-bootstrap-delivery': 'delivery-1' };
    const first = await r.post(body, headers);
    const again = await r.post(body, headers);
    assert.deepEqual([first.status, first.json.stored, again.status, again.json.duplicate], [200, true, 200, true]);
    assert.equal((await r.get('/api/servers/web-2')).json.runs.length, 1);
    const own = JSON.stringify(callbackBody('own-key'));
    assert.equal((await r.post(own, { 'x-bootstrap-signature-256': sign(key, own) })).status, 401, 'the fleet key is not its key');
    assert.equal((await r.post(own, { 'x-bootstrap-signature-256': sign('the-servers-own-key', own) })).status, 200);
    // The key is chosen by the name the body claims before it is parsed: a name hidden from that
    // (an escaped key, a second "server") is not signed by its own key, so refused.
    for (const sneaky of [own.replace('"server":"own-key"', '"ser\\u0076er":"own-key"'), own.replace('"server":"own-key"', '"server":"web-9","server":"own-key"')]) {
      assert.notEqual(sneaky, own);
      assert.equal((await r.post(sneaky, { 'x-bootstrap-signature-256': sign(key, sneaky) })).status, 401, sneaky.slice(0, 120));
    }
    for (const name of ['empty-key', 'dir-key', 'open-key']) {
      const b = JSON.stringify(callbackBody(name));
      const answer = await r.post(b, { 'x-bootstrap-signature-256': sign(key, b) });
      assert.equal(answer.status, 503, `${name}: its unusable key file, not the fleet key (${JSON.stringify(answer.json)})`);
    }
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_callbacks_refused_total\{reason="key_unusable"\} 3$/m);
    // The delivery id is not signed: the same callback replayed under a new one is a duplicate and changes nothing.
    const reportedAt = (await r.get('/api/servers/web-2')).json.server.last_report_at;
    const replay = await r.post(body, { ...headers, 'x-bootstrap-delivery': 'delivery-replayed' });
    assert.deepEqual([replay.status, replay.json.duplicate], [200, true]);
    assert.equal((await r.get('/api/servers/web-2')).json.server.last_report_at, reportedAt, 'a replay does not make a server look alive');
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_callbacks_duplicate_total 2$/m);
    // The same delivery id from another server (run ids are unique per server only): its own.
    const other = JSON.stringify(callbackBody('web-2b'));
    const otherAnswer = await r.post(other, { 'x-bootstrap-signature-256': sign(key, other), 'x-bootstrap-delivery': 'delivery-1' });
    assert.equal(otherAnswer.json.stored, true);
    // A field the schema does not know yet (a newer agent): accepted, as docs/callbacks.md asks of receivers.
    const newer = JSON.stringify(callbackBody('web-2', { added_later: { x: 1 } }));
    assert.equal((await r.post(newer, { 'x-bootstrap-signature-256': sign(key, newer) })).status, 200);
  });

  it('an older callback redelivered late changes no newer state; GET of an unknown path is 404, PUT /callback 405, /healthz ok', async () => {
    const newer = callbackBody('web-3', { status: 'failure', exit_code: 1, failure: { phase: 'configure', step: '10-x', kind: 'exit', exit_code: 1, message: 'boom' } });
    const older = callbackBody('web-3', { finished_at: '2020-01-01T00:00:00.000Z', started_at: '2020-01-01T00:00:00.000Z' });
    for (const b of [newer, older]) {
      const text = JSON.stringify(b);
      assert.equal((await r.post(text, { 'x-bootstrap-signature-256': sign(key, text) })).status, 200);
    }
    const view = (await r.get('/api/servers/web-3')).json;
    assert.equal(view.server.state, 'failed');
    assert.equal(view.server.last_run.id, newer['id']);
    assert.equal(view.runs.length, 2);
    for (const runs of ['1.5', '-3', 'NaN', '1e9']) assert.equal((await r.get(`/api/servers/web-3?runs=${runs}`)).status, 200, `?runs=${runs}`);
    assert.equal((await r.get('/api/servers/web-3?runs=1.5')).json.runs.length, 1);
    assert.equal((await r.get('/nothing')).status, 404);
    assert.deepEqual([(await r.get('/healthz')).status, (await r.get('/healthz')).text], [200, 'ok\n']);
    assert.equal((await fetch(r.callbackUrl, { method: 'PUT' })).status, 405);
  });

  it('a request not received whole within --request-timeout: 408 (which the agent retries)', async () => {
    const socket = connect(r.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
    socket.write('POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"schema":');
    const t0 = Date.now();
    try {
      await new Promise<void>((resolve, reject) => {
        socket.on('close', () => resolve());
        // unref: a pending timer kept the test process alive 10 s after the tests were done.
        setTimeout(() => reject(new Error(`no answer within 15 s: ${JSON.stringify(answer)}`)), 15_000).unref();
      });
    } finally {
      socket.destroy();
    }
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(Date.now() - t0 >= 1500, `answered after ${Date.now() - t0} ms, not before the 2 s timeout`);
  });

  it('bad flags: exit 64 with the usage; no key at all is refused (every callback must be signed), nor an exposed one; on an older Node the launcher runs it on a newer one', () => {
    const node = nodeBinary(nodeVersions.lts24);
    const help = spawnSync(process.execPath, [receiverBin, '--help'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, BOOTSTRAP_RECEIVER_NODE: node } });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: bootstrap-receiver /);
    const none = spawnSync(node, [receiverBin, '--db', 'sqlite:/nonexistent/x.db'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(none.status, 64);
    assert.match(none.stderr, /no secret: give --secret-file/);
    const listen = spawnSync(node, [receiverBin, '--secret-file', secrets.secretFile, '--listen', 'nowhere'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(listen.status, 64);
    assert.match(listen.stderr, /--listen: "nowhere" is not HOST:PORT/);
    // A relative BOOTSTRAP_RECEIVER_NODE would run whatever file of that name is in the current directory.
    const planted = join(secrets.dir, 'planted');
    mkdirSync(planted);
    writeFileSync(join(planted, 'node24'), `#!/bin/sh\ntouch ${join(planted, 'ran')}\necho 24.0.0\n`, { mode: 0o755 });
    const relative = spawnSync(process.execPath, [receiverBin, '--help'], { encoding: 'utf8', timeout: 30_000, cwd: planted, env: { ...process.env, BOOTSTRAP_RECEIVER_NODE: './node24' } });
    if (Number(process.versions.node.split('.')[0]) < 22) {
      assert.equal(relative.status, 64, relative.stderr);
      assert.match(relative.stderr, /BOOTSTRAP_RECEIVER_NODE must be an absolute path/);
    }
    assert.equal(existsSync(join(planted, 'ran')), false, 'the planted file never runs');
    // A key others can read, or a keys dir others can write to: they could sign as any server.
    const exposed = join(secrets.dir, 'exposed.secret');
    writeFileSync(exposed, 'k\n');
    chmodSync(exposed, 0o644);
    const openDir = join(secrets.dir, 'open-keys');
    mkdirSync(openDir);
    chmodSync(openDir, 0o777);
    for (const [args, message] of [[['--secret-file', exposed], /--secret-file .* is readable or writable by others \(mode 644\)/], [['--secrets-dir', openDir], /--secrets-dir .* is writable by group or others \(mode 777\)/]] as const) {
      const refused = spawnSync(node, [receiverBin, '--listen', '127.0.0.1:0', '--db', `sqlite:${join(secrets.dir, 'refused.db')}`, ...args], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(refused.status, 1, `${args.join(' ')}: ${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, message);
    }
  });
});
