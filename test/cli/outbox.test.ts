// Outbox hygiene, black-box through the CLI with real receivers on 127.0.0.1: per-receiver
// delivery (one that never answers holds back no other), only the newest checkup report kept,
// [callback] max_age, callback.flush --requeue-dead.

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { agentMs, exitLagMs, json, sandbox, type Sandbox } from '../helpers/cli.js';
import { iniWith, script } from '../helpers/phases.js';
import { freePort, httpStub } from '../helpers/servers.js';

interface Received {
  delivery: string;
  body: { id: string; kind: string; action: string };
  at: number;
}

/**
 * A receiver that records each callback and answers `answer(req, body)` (a status), or never
 * answers at all ('hang': the socket is accepted, the request read, nothing sent back).
 */
async function receiver(answer: (req: IncomingMessage, body: string) => number | 'hang' = () => 200, port = 0) {
  const received: Received[] = [];
  /** Requests left unanswered: when each was read, and when the agent gave up on it (closed it). */
  const hung: { at: number; closedAt: number | null }[] = [];
  const stub = await httpStub((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const status = answer(req, body);
      if (status === 'hang') {
        const h = { at: Date.now(), closedAt: null as number | null };
        hung.push(h);
        req.socket.on('close', () => (h.closedAt = Date.now()));
        return;
      }
      if (status >= 200 && status < 300) received.push({ delivery: String(req.headers['x-bootstrap-delivery']), body: JSON.parse(body), at: Date.now() });
      res.writeHead(status);
      res.end();
    });
  }, port);
  return { ...stub, received, hung };
}

function boxWith(callback: string, extra = ''): Sandbox {
  const box = sandbox(iniWith({}, `\n[callback]\n${callback}\n${extra}`));
  mkdirSync(box.phasesDir, { recursive: true });
  script(join(box.phasesDir, 'configure.d', '10-ok'), 'echo configured');
  return box;
}

const listDir = (dir: string) => {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
};
const waiting = (box: Sandbox) => listDir(join(box.stateDir, 'outbox')).map((n) => JSON.parse(readFileSync(join(box.stateDir, 'outbox', n), 'utf8')) as { id: string; kind?: string });
const dead = (box: Sandbox) => listDir(join(box.stateDir, 'outbox', 'dead')).map((n) => JSON.parse(readFileSync(join(box.stateDir, 'outbox', 'dead', n), 'utf8')) as { id: string; dead_reason: string });

describe('outbox hygiene', () => {
  it('a --callback-url that never answers, at the head of the outbox, holds back none of [callback] url\'s callbacks', async () => {
    const good = await receiver();
    const stuck = await receiver(() => 'hang');
    const box = boxWith(`url = ${good.url}/hook\ntimeout = 2`);
    try {
      const first = await box.run(['server.provision', '--json', '--callback-url', `${stuck.url}/never`]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(waiting(box).map((w) => w.id), [json(first).id], 'the stuck receiver\'s callback waits');
      const second = await box.run(['server.refresh', '--json', '-v'], { timeoutMs: 30_000 }); // -v: where the time went, if it fails
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(good.received.map((r) => r.delivery), [json(second).id], 'delivered although an older callback for another receiver hangs');
      // In parallel, not after it: the good receiver had its callback before the agent gave up on
      // the stuck one (its one attempt of this run, closed at the 2 s timeout).
      assert.equal(stuck.hung.length, 2, 'one attempt in each run: the timeout took the whole budget');
      const attempt = stuck.hung[1]!;
      for (let i = 0; i < 40 && attempt.closedAt === null; i++) await new Promise((r) => setTimeout(r, 50)); // its close may come after the exit
      assert.ok(attempt.closedAt !== null && good.received[0]!.at < attempt.closedAt, `the good callback came ${good.received[0]!.at - attempt.at} ms after the stuck attempt began, which ended after ${attempt.closedAt === null ? '(never)' : attempt.closedAt - attempt.at} ms`);
      // By the agent's clock (a loaded machine's start-up is not what is tested): from the start of
      // delivery to its last line, about the 2 s timeout; and then it ended.
      const delivering = agentMs(second.stderr, /callbacks: flushing/);
      assert.ok(delivering < 2000 + 1500, `the run delivered for ${delivering} ms with a 2 s callback timeout:\n${second.stderr}`);
      assert.ok(exitLagMs(second) < 5000, `the run ended ${exitLagMs(second)} ms after its last line`);
      assert.deepEqual(waiting(box).map((w) => w.id), [json(first).id]);
      const flush = await box.run(['callback.flush', '--json']);
      assert.equal(flush.code, 1, 'a callback still waits');
      assert.deepEqual(json(flush).waiting, [json(first).id]);
      assert.deepEqual(json(flush).delivered, []);
    } finally {
      box.cleanup();
      await good.close();
      await stuck.close();
    }
  });

  it('5 checkup reports while the receiver is down: only the newest waits and is delivered; every run callback is kept, in order', async () => {
    const port = await freePort();
    const health = await httpStub();
    const box = boxWith(`url = http://127.0.0.1:${port}/hook\ntimeout = 1`, `\n[heartbeat.web]\ntype = http\nurl = ${health.url}/health\n`);
    try {
      const runs: string[] = [];
      const provision = await box.run(['server.provision', '--json']);
      assert.equal(provision.code, 0, provision.stderr);
      runs.push(json(provision).id);
      const checkups: string[] = [];
      for (let i = 0; i < 5; i++) {
        const c = await box.run(['heartbeat.checkup', '--report']);
        assert.equal(c.code, 0, c.stderr);
        const now = waiting(box).filter((w) => w.kind === 'checkup');
        assert.equal(now.length, 1, `after report ${i + 1}: ${JSON.stringify(now)}`);
        assert.ok(!checkups.includes(now[0]!.id), 'a new one each time');
        checkups.push(now[0]!.id);
      }
      const refresh = await box.run(['server.refresh', '--json']);
      runs.push(json(refresh).id);
      assert.equal(waiting(box).length, 3, 'two run callbacks and one checkup report');
      const r = await receiver(() => 200, port);
      try {
        const flush = await box.run(['callback.flush', '--json']);
        assert.equal(flush.code, 0, flush.stderr);
        const got = r.received.map((x) => x.body);
        assert.deepEqual(got.filter((b) => b.kind === 'checkup').map((b) => b.id), [checkups[4]], 'the newest checkup only');
        assert.deepEqual(got.filter((b) => b.kind === 'run').map((b) => b.id), runs, 'every run callback, oldest first');
        assert.deepEqual(waiting(box), []);
        assert.deepEqual(dead(box), [], 'dropped checkups are not dead');
      } finally {
        await r.close();
      }
    } finally {
      box.cleanup();
      await health.close();
    }
  });

  it('[callback] max_age moves what waited too long to outbox/dead/ with the reason; callback.flush --requeue-dead sends it', async () => {
    const port = await freePort();
    const box = boxWith(`url = http://127.0.0.1:${port}/hook\ntimeout = 1\nmax_age = 1`);
    try {
      const run = await box.run(['server.provision', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(waiting(box).length, 1);
      // The age is the condition under test: let it pass.
      await new Promise((r) => setTimeout(r, 1200));
      const flush = await box.run(['callback.flush', '--json']);
      assert.equal(flush.code, 0, flush.stderr);
      assert.deepEqual(json(flush).dead, [json(run).id]);
      assert.match(flush.stderr, /1 callback\(s\) waited longer than \[callback\] max_age \(1 s\)/);
      assert.deepEqual(waiting(box), []);
      const [d] = dead(box);
      assert.equal(d?.id, json(run).id);
      assert.match(d!.dead_reason, /^not delivered within \[callback\] max_age \(1 s\): queued \d{4}-\d\d-\d\dT[\d:.]+Z, \d+ attempt\(s\), last error: connection refused$/);
      assert.equal(json(await box.run(['server.status', '--json'])).callbacks.dead, 1);
      const r = await receiver(() => 200, port);
      try {
        const requeue = await box.run(['callback.flush', '--requeue-dead', '--json']);
        assert.equal(requeue.code, 0, requeue.stderr);
        assert.deepEqual(json(requeue).requeued, [json(run).id]);
        assert.deepEqual(json(requeue).delivered, [json(run).id]);
        assert.deepEqual(r.received.map((x) => x.delivery), [json(run).id]);
        assert.deepEqual(dead(box), []);
        assert.deepEqual(waiting(box), []);
      } finally {
        await r.close();
      }
    } finally {
      box.cleanup();
    }
  });

  it('a 401 goes to outbox/dead/; once the secret is fixed, callback.flush --requeue-dead delivers it, signed with the new key', async () => {
    const key = 'the-right-key';
    const r = await receiver((req, body) => {
      const expected = Buffer.from(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`);
      const got = Buffer.from(String(req.headers['x-bootstrap-signature-256']));
      return got.length === expected.length && timingSafeEqual(got, expected) ? 200 : 401;
    });
    const box = boxWith(`url = ${r.url}/hook\ntimeout = 5\nsecret_file = callback.secret`);
    const secret = join(box.dir, 'callback.secret');
    writeFileSync(secret, 'a-wrong-key');
    chmodSync(secret, 0o600);
    try {
      const run = await box.run(['server.provision', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(r.received.length, 0);
      assert.match(dead(box)[0]?.dead_reason ?? '', /HTTP 401/);
      const again = await box.run(['callback.flush', '--json']);
      assert.deepEqual(json(again).delivered, [], 'without --requeue-dead, dead stays dead');
      writeFileSync(secret, key);
      const requeue = await box.run(['callback.flush', '--requeue-dead']);
      assert.equal(requeue.code, 0, requeue.stderr);
      assert.match(requeue.stdout, /^1 requeued from outbox\/dead\/, 1 delivered, 0 still waiting, 0 moved to outbox\/dead\//);
      assert.deepEqual(r.received.map((x) => x.delivery), [json(run).id]);
      assert.equal(r.received[0]!.body.action, 'provision');
      assert.deepEqual(dead(box), []);
      assert.equal(json(await box.run(['server.status', '--json'])).callbacks.dead, 0);
    } finally {
      box.cleanup();
      await r.close();
    }
  });
});
