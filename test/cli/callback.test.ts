import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { validate } from '../helpers/json-schema.js';
import { describe, it } from 'node:test';
import { Agent } from '../../src/agent.js';
import { agentMs, collect, exitLagMs, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { iniWith, script } from '../helpers/phases.js';
import { freePort, httpStub, type HttpStub } from '../helpers/servers.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
  url: string;
}

/** A receiver that records every request and answers from `replies` (then 200). */
async function receiver(replies: (number | [number, Record<string, string>] | 'hang')[] = [], port = 0) {
  const received: Received[] = [];
  const stub: HttpStub = await httpStub((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body, at: Date.now(), url: req.url ?? '' });
      const reply = replies.shift() ?? 200;
      if (reply === 'hang') return;
      const [status, headers] = Array.isArray(reply) ? reply : [reply, {}];
      res.writeHead(status, headers);
      res.end();
    });
  }, port);
  return { ...stub, received };
}

function boxWith(callback: Record<string, string | number>, phasesKeys: Record<string, string | number> = {}): Sandbox {
  const lines = Object.entries(callback).map(([k, v]) => `${k} = ${v}`);
  const box = sandbox(iniWith(phasesKeys, `\n[callback]\n${lines.join('\n')}\n`));
  mkdirSync(box.phasesDir, { recursive: true });
  script(join(box.phasesDir, 'configure.d', '10-ok'), 'echo configured');
  return box;
}

const outbox = (box: Sandbox) => {
  try {
    return readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
};

describe('callbacks', () => {
  it('a run posts one signed callback with the documented body', async () => {
    const r = await receiver();
    const box = boxWith({ url: `${r.url}/hook`, secret_file: 'callback.secret', timeout: 5 });
    writeFileSync(join(box.dir, 'callback.secret'), 'k3y-for-hmac\n');
    chmodSync(join(box.dir, 'callback.secret'), 0o600);
    try {
      const run = await box.run(['server.provision', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(r.received.length, 1);
      const got = r.received[0]!;
      const body = JSON.parse(got.body);
      assert.equal(got.headers['content-type'], 'application/json');
      assert.match(String(got.headers['user-agent']), /^bootstrap-agent\/\d+\.\d+\.\d+$/);
      assert.equal(got.headers['x-bootstrap-delivery'], json(run).id);
      const expected = `sha256=${createHmac('sha256', 'k3y-for-hmac').update(got.body).digest('hex')}`;
      assert.equal(got.headers['x-bootstrap-signature-256'], expected);
      assert.equal(body.id, json(run).id);
      assert.equal(body.schema, 'bootstrap.callback');
      assert.equal(body.schema_version, 1);
      assert.equal(body.kind, 'run');
      assert.equal(body.action, 'provision');
      assert.equal(body.status, 'success');
      assert.equal(body.failure, null);
      assert.deepEqual(body.products, { deepfiler: '1.4.0', haproxy: '2.6' });
      const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
      for (const key of schema.required) assert.ok(Object.hasOwn(body, key), `body has ${key}`);
      for (const key of Object.keys(body)) assert.ok(Object.hasOwn(schema.properties, key), `${key} is in the JSON Schema`);
      assert.deepEqual(validate(schema, body), []);
      assert.deepEqual(outbox(box), []);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('receiver down during the run: exit code unchanged, the callback waits; receiver back: callback.flush delivers it', async () => {
    const port = await freePort();
    const box = boxWith({ url: `http://127.0.0.1:${port}/hook`, timeout: 1 });
    try {
      script(join(box.phasesDir, 'configure.d', '20-fail'), 'exit 5');
      const run = await box.run(['server.provision', '--json', '-v'], { timeoutMs: 30_000 });
      assert.equal(run.code, 1, 'the failed run exits 1, not something about the callback');
      // By the agent's clock, from the start of delivery to its last line: retries within the 1 s
      // timeout; and then it ended.
      const delivering = agentMs(run.stderr, /callbacks: flushing/);
      assert.ok(delivering < 1000 + 1500, `delivered for ${delivering} ms with a 1 s timeout:\n${run.stderr}`);
      assert.ok(exitLagMs(run) < 5000, `the run ended ${exitLagMs(run)} ms after its last line`);
      assert.equal(outbox(box).length, 1);
      const status = json(await box.run(['server.status', '--json']));
      assert.equal(status.callbacks.pending, 1);
      const r = await receiver([], port);
      try {
        const flush = await box.run(['callback.flush', '--json']);
        assert.equal(flush.code, 0, flush.stderr);
        assert.deepEqual(json(flush).delivered, [json(run).id]);
        assert.equal(r.received.length, 1);
        assert.equal(JSON.parse(r.received[0]!.body).status, 'failure');
        assert.deepEqual(outbox(box), []);
      } finally {
        await r.close();
      }
    } finally {
      box.cleanup();
    }
  });

  it('500, 500, 200: delivered on the third attempt; 429 with Retry-After: 1 waits at least 1 s', async () => {
    const r = await receiver([500, 500, 200, [429, { 'retry-after': '1' }], 200]);
    const box = boxWith({ url: r.url, timeout: 10 });
    try {
      assert.equal((await box.run(['server.provision'])).code, 0);
      assert.equal(r.received.length, 3);
      assert.equal(new Set(r.received.map((x) => x.headers['x-bootstrap-delivery'])).size, 1);
      assert.equal((await box.run(['server.refresh'])).code, 0);
      assert.equal(r.received.length, 5);
      assert.ok(r.received[4]!.at - r.received[3]!.at >= 1000, `retried after ${r.received[4]!.at - r.received[3]!.at} ms`);
      assert.deepEqual(outbox(box), []);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('400: moved to outbox/dead/ with the reason, never retried', async () => {
    const r = await receiver([400]);
    const box = boxWith({ url: r.url, timeout: 5 });
    try {
      assert.equal((await box.run(['server.provision'])).code, 0);
      assert.equal(r.received.length, 1);
      const dead = readdirSync(join(box.stateDir, 'outbox', 'dead'));
      assert.equal(dead.length, 1);
      assert.match(JSON.parse(readFileSync(join(box.stateDir, 'outbox', 'dead', dead[0]!), 'utf8')).dead_reason, /HTTP 400/);
      await box.run(['callback.flush']);
      assert.equal(r.received.length, 1, 'not retried');
      assert.equal(json(await box.run(['server.status', '--json'])).callbacks.dead, 1);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('a receiver that accepts and never answers: the run gives up on it at the callback timeout and ends (by its own clock, within 1.5 s after)', async () => {
    const r = await receiver(['hang', 'hang', 'hang', 'hang']);
    const box = boxWith({ url: r.url, timeout: 2 });
    try {
      const run = await box.run(['server.provision', '--json', '-v'], { timeoutMs: 30_000 }); // -v: where the time went, if it fails
      assert.equal(run.code, 0, run.stderr);
      // From the start of delivery to the agent's last line, then to its end (a loaded machine's
      // start-up is not what is tested).
      const delivering = agentMs(run.stderr, /callbacks: flushing/);
      assert.ok(delivering >= 1900 && delivering < 2000 + 1500, `delivered for ${delivering} ms with a 2 s timeout:\n${run.stderr}`);
      assert.ok(exitLagMs(run) < 5000, `the run ended ${exitLagMs(run)} ms after its last line`);
      assert.equal(r.received.length, 1, 'one attempt: it took the whole timeout');
      assert.equal(outbox(box).length, 1);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('SIGKILL during delivery: the next flush delivers it, with the same id', async () => {
    const r = await receiver(['hang']);
    const box = boxWith({ url: r.url, timeout: 10 });
    try {
      const child = box.start(['server.provision']);
      const done = collect(child);
      for (let i = 0; i < 200 && r.received.length === 0; i++) await new Promise((x) => setTimeout(x, 25));
      child.kill('SIGKILL');
      await done;
      const first = r.received[0]!.headers['x-bootstrap-delivery'];
      const flush = await box.run(['callback.flush', '--json']);
      assert.equal(flush.code, 0, flush.stderr);
      assert.equal(r.received.length, 2);
      assert.equal(r.received[1]!.headers['x-bootstrap-delivery'], first);
      assert.equal(r.received[1]!.body, r.received[0]!.body, 'the same bytes');
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('200 callbacks queued while the receiver is down, then one flush: all 200 ids, each once, outbox empty', async () => {
    const r = await receiver();
    const box = boxWith({ url: r.url, timeout: 30 });
    try {
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: {} });
      await agent.store.ensureDir();
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const id = `20261121T1000${String(Math.floor(i / 60)).padStart(2, '0')}Z-${i.toString(16).padStart(6, '0')}`;
        ids.push(id);
        await agent.queueCallback({ schema: 'bootstrap.callback', schema_version: 1, kind: 'run', id } as never);
      }
      assert.equal(outbox(box).length, 200);
      const flush = await box.run(['callback.flush', '--json']);
      assert.equal(flush.code, 0, flush.stderr);
      const got = r.received.map((x) => String(x.headers['x-bootstrap-delivery']));
      assert.equal(got.length, 200);
      assert.deepEqual([...new Set(got)].sort(), [...ids].sort());
      assert.deepEqual(outbox(box), []);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('a token in the callback URL and the callback secret appear in no log, journal or body', async () => {
    const r = await receiver([500, 200]);
    const box = boxWith({ url: `${r.url}/hook?token=T0KEN-in-query`, secret_file: 'callback.secret', timeout: 5 });
    writeFileSync(join(box.dir, 'callback.secret'), 'SECRET-hmac-key');
    chmodSync(join(box.dir, 'callback.secret'), 0o600);
    try {
      const run = await box.run(['server.provision', '-v']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(r.received.length, 2);
      assert.match(run.stderr, /callback \S+ delivered to http:\/\/127\.0\.0\.1:\d+\/hook\?… \(HTTP 200, attempt 2\)/);
      const everything = [run.stdout, run.stderr, ...r.received.map((x) => x.body), ...readdirSync(join(box.stateDir, 'runs')).map((n) => readFileSync(join(box.stateDir, 'runs', n), 'utf8')), readFileSync(join(box.stateDir, 'state.json'), 'utf8')].join('\n');
      assert.doesNotMatch(everything, /T0KEN-in-query/);
      assert.doesNotMatch(everything, /SECRET-hmac-key/);
      const flagged = await box.run(['server.refresh', '--callback-url', `${r.url}/other?token=FLAG-T0KEN`]);
      assert.equal(flagged.code, 0);
      assert.doesNotMatch(flagged.stderr + flagged.stdout, /FLAG-T0KEN/);
      assert.match(r.received.at(-1)!.url, /^\/other\?token=FLAG-T0KEN$/, 'delivered to the flag URL');
      const journalsText = readdirSync(join(box.stateDir, 'runs')).map((n) => readFileSync(join(box.stateDir, 'runs', n), 'utf8')).join('');
      assert.doesNotMatch(journalsText, /FLAG-T0KEN/);
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('a secret file that is missing, empty or readable by others is refused with 78, before anything runs', async () => {
    const r = await receiver();
    const box = boxWith({ url: r.url, secret_file: 'callback.secret' });
    const secret = join(box.dir, 'callback.secret');
    try {
      const missing = await box.run(['server.provision']);
      assert.equal(missing.code, 78);
      assert.match(missing.stderr, /\[callback\] secret_file: cannot read .*callback\.secret: ENOENT/);
      writeFileSync(secret, '');
      chmodSync(secret, 0o600);
      const empty = await box.run(['server.provision']);
      assert.equal(empty.code, 78);
      assert.match(empty.stderr, /is empty/);
      writeFileSync(secret, 'key');
      chmodSync(secret, 0o644);
      const open = await box.run(['server.provision']);
      assert.equal(open.code, 78);
      assert.match(open.stderr, /readable by group or others \(mode 644\) \(chmod 600 /);
      assert.equal(r.received.length, 0, 'never sent unsigned');
      // No run happened: each is recorded as refused (refused runs are runs), none called back unsigned.
      const journals = readdirSync(join(box.stateDir, 'runs')).filter((n) => n.endsWith('.json'));
      assert.equal(journals.length, 3);
      for (const n of journals) assert.equal(JSON.parse(readFileSync(join(box.stateDir, 'runs', n), 'utf8')).status, 'refused');
    } finally {
      box.cleanup();
      await r.close();
    }
  });

  it('https: certificates are verified; ca_file trusts a private CA', async () => {
    const box = boxWith({ url: 'https://127.0.0.1:1/placeholder', timeout: 2 });
    const key = join(box.dir, 'key.pem');
    const cert = join(box.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const received: string[] = [];
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      received.push(String(req.headers['x-bootstrap-delivery']));
      req.resume();
      req.on('end', () => res.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/hook`;
    try {
      writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = ${url}\ntimeout = 2\n`));
      const run = await box.run(['server.provision']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(received.length, 0, 'a self-signed certificate is not trusted');
      assert.match(run.stderr, /SELF_SIGNED|self.signed|certificate/i);
      assert.equal(outbox(box).length, 1);
      writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = ${url}\nca_file = cert.pem\ntimeout = 5\n`));
      const flush = await box.run(['callback.flush']);
      assert.equal(flush.code, 0, flush.stderr);
      assert.equal(received.length, 1);
      assert.deepEqual(outbox(box), []);
    } finally {
      server.close();
      box.cleanup();
    }
  });

  it('heartbeat.checkup --report posts the checkup', async () => {
    const r = await receiver();
    const hb = await httpStub();
    const box = sandbox(iniWith({}, `\n[callback]\nurl = ${r.url}\n\n[heartbeat.web]\ntype = http\nurl = ${hb.url}/health\n`));
    try {
      const c = await box.run(['heartbeat.checkup', '--report']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(r.received.length, 1);
      const body = JSON.parse(r.received[0]!.body);
      assert.equal(body.kind, 'checkup');
      assert.equal(body.status, 'success');
      assert.equal(body.heartbeat.results[0].name, 'web');
    } finally {
      box.cleanup();
      await r.close();
      await hb.close();
    }
  });
});
