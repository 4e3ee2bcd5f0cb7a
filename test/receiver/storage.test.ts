// Both databases, the same checks: the real agent's callbacks stored; a restart applies no
// migration twice and keeps everything; retention prunes run history in batches and keeps each
// server's latest state and last run. PostgreSQL is a private cluster (test/helpers/postgres.ts),
// skipped with the reason when Debian's postgresql is not installed (.ci/run installs it).
// ~6 s per database (retention waits for 2 s of age), plus ~3 s for the cluster and ~6 s for
// SQLite locked by another process (its 5 s busy timeout).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { json } from '../helpers/cli.js';
import { nodeBinary, nodeVersions } from '../helpers/node-bins.js';
import { script } from '../helpers/phases.js';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.js';
import { agentFor, callbackBody, secretDir, sign, startReceiver, type Receiver } from '../helpers/receiver.js';

const key = 'storage-key';

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The checks, on the database `db()` names (a fresh one per call). */
function checks(db: () => string, schemaRows: (url: string) => number | null) {
  const secrets = secretDir(key);
  const receivers: Receiver[] = [];
  const start = async (url: string, args: string[] = []) => {
    const r = await startReceiver({ db: url, secretFile: secrets.secretFile, args });
    receivers.push(r);
    return r;
  };
  after(async () => {
    for (const r of receivers) await r.kill();
    secrets.cleanup();
  });

  it("the agent's success and failure stored; a restart (SIGTERM, exit 0) applies no migration again and keeps them", async () => {
    const url = db();
    const r = await start(url);
    assert.match(r.output(), /applied migrations 1\b/);
    const box = agentFor('pg-or-lite', r.callbackUrl, key);
    try {
      assert.equal((await box.run(['server.provision'])).code, 0);
      script(join(box.phasesDir, 'configure.d', '20-fail'), 'exit 3');
      const failed = await box.run(['server.refresh', '--json']);
      assert.equal(failed.code, 1);
      assert.equal(await r.stop(), 0);
      const again = await start(url);
      assert.doesNotMatch(again.output(), /applied migrations/);
      if (schemaRows(url) !== null) assert.equal(schemaRows(url), 1);
      const view = (await again.get('/api/servers/pg-or-lite')).json;
      assert.deepEqual(view.runs.map((x: any) => x.status), ['failure', 'success']);
      assert.equal(view.runs[0].id, json(failed).id);
      assert.equal(view.server.state, 'failed');
    } finally {
      box.cleanup();
    }
  });

  it("40 callbacks of 4 servers at once, some twice: each stored once, each server's state from its newest", async () => {
    const r = await start(db());
    const bodies = Array.from({ length: 40 }, (_, i) => callbackBody(`busy-${i % 4}`, { finished_at: `2026-02-01T00:00:${String(i).padStart(2, '0')}.000Z`, status: i % 3 === 0 ? 'failure' : 'success' }));
    const post = (b: Record<string, unknown>) => {
      const text = JSON.stringify(b);
      return r.post(text, { 'x-bootstrap-signature-256': sign(key, text), 'x-bootstrap-delivery': String(b['id']) });
    };
    const answers = await Promise.all([...bodies, ...bodies.slice(0, 10)].map(post));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    assert.equal(answers.filter((a) => a.json.duplicate).length, 10);
    for (let s = 0; s < 4; s++) {
      const view = (await r.get(`/api/servers/busy-${s}?runs=100`)).json;
      assert.equal(view.runs.length, 10);
      assert.equal(view.server.last_run.id, bodies[36 + s]!['id'], `busy-${s}: its newest callback`);
    }
    // A NUL in a stored text field: PostgreSQL's text cannot hold it (a 500 the agent retried for
    // ever); refused on both databases alike, its neighbours stored.
    const [poison, neighbour] = await Promise.all([post(callbackBody('busy-nul', { label: 'a\u0000b' })), post(callbackBody('busy-next'))]);
    assert.deepEqual([poison.status, neighbour.status], [400, 200], JSON.stringify(poison.json));
    assert.match(poison.json.error, /\$\.label: contains a NUL character/);
    // Integers the schema allows but a column cannot hold (PostgreSQL's INTEGER is 32-bit): 400 on
    // both databases, not a 500 for ever on one.
    const [wide, long] = await Promise.all([post(callbackBody('busy-wide', { exit_code: 4294967296 })), post(callbackBody('busy-long', { duration_ms: 1e21 }))]);
    assert.deepEqual([wide.status, long.status], [400, 400], JSON.stringify([wide.json, long.json]));
    assert.match(wide.json.error, /\$\.exit_code: out of range/);
    // Run history read for a page is bounded in bytes (8 MiB), not only in runs.
    for (let i = 0; i < 10; i++) assert.equal((await post(callbackBody('busy-big', { label: 'x'.repeat(1_000_000) }))).status, 200);
    const big = (await r.get('/api/servers/busy-big?runs=1000')).json;
    assert.equal(big.runs.length, 8, 'the newest 8 MB of its 10 MB');
    // An unsigned megabyte of nested JSON gets nothing but the signature check: 401 for the
    // signature, not 400 for the JSON (parsed first, it took ~0.5 s of CPU per request here).
    assert.equal((await r.post('['.repeat(1_000_000), {})).status, 401);
    await waitFor('its log line', async () => /POST \/callback 401 [\d.]+ ms refused \(signature\)/.exec(r.output()));
  });

  it("--retain: older run history pruned (counted in /metrics), each server's last run and latest state kept; silent past --unresponsive-after: unresponsive", async () => {
    const r = await start(db(), ['--retain', '2s', '--prune-interval', '300ms', '--unresponsive-after', '1s']);
    // Each finished just before it is sent (one after the other: newer and newer): a callback older
    // than --retain is not stored at all (below), and four posts on a loaded machine can take longer.
    const bodies: Record<string, unknown>[] = [];
    for (const server of ['kept', 'kept', 'kept', 'other']) {
      const b = callbackBody(server);
      bodies.push(b);
      const text = JSON.stringify(b);
      const answer = await r.post(text, { 'x-bootstrap-signature-256': sign(key, text) });
      assert.deepEqual([answer.status, answer.json.stored], [200, true], JSON.stringify(answer.json));
    }
    await waitFor('2 callbacks pruned', async () => /^bootstrap_receiver_pruned_total 2$/m.test((await r.get('/metrics')).text));
    const kept = (await r.get('/api/servers/kept')).json;
    assert.deepEqual(kept.runs.map((x: any) => x.id), [bodies[2]!['id']]);
    assert.equal(kept.server.last_run.id, bodies[2]!['id']);
    assert.equal((await r.get('/api/servers/other')).json.runs.length, 1);
    // Pruned once "kept"'s second callback is 2 s old; "other", posted after its third, may have
    // been silent for less than 1 s then on a loaded machine: waited for, not assumed.
    const fleet = await waitFor('both silent for over 1 s: unresponsive', async () => {
      const f = (await r.get('/api/fleet')).json;
      return f.counts.unresponsive === 2 && f;
    });
    assert.deepEqual([fleet.counts.total, fleet.counts.unresponsive, fleet.unresponsive_after_s], [2, 2, 1], 'silent for over 1 s: unresponsive');
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_servers\{state="unresponsive"\} 2$/m);
    await new Promise((res) => setTimeout(res, 700));
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_pruned_total 2$/m, 'nothing more to prune');
    // A pruned callback sent again (a replay, or an agent's outbox after a long outage): acknowledged,
    // not stored, and it does not make its silent server look alive.
    const replay = JSON.stringify(bodies[0]);
    const answer = await r.post(replay, { 'x-bootstrap-signature-256': sign(key, replay), 'x-bootstrap-delivery': 'a-new-delivery-id' });
    assert.equal(answer.status, 200);
    assert.deepEqual([answer.json.stored, answer.json.expired], [false, true]);
    assert.deepEqual((await r.get('/api/servers/kept')).json.runs.map((x: any) => x.id), [bodies[2]!['id']]);
    assert.equal((await r.get('/api/fleet')).json.servers.find((x: any) => x.server === 'kept').state, 'unresponsive');
    assert.match((await r.get('/metrics')).text, /^bootstrap_receiver_callbacks_expired_total 1$/m);
    // As old, but the server's latest (an agent whose clock is a day behind, or back from an outage
    // longer than --retain): stored, never dropped — the agent removes what was answered 200.
    const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
    const behind = callbackBody('clock-behind', { started_at: dayAgo, finished_at: dayAgo });
    const text = JSON.stringify(behind);
    const stored = await r.post(text, { 'x-bootstrap-signature-256': sign(key, text) });
    assert.deepEqual([stored.status, stored.json.stored], [200, true], JSON.stringify(stored.json));
    assert.equal((await r.get('/api/servers/clock-behind')).json.server.last_run.id, behind['id']);
  });
}

describe('storage: SQLite', () => {
  let n = 0;
  const dir = secretDir();
  after(() => dir.cleanup());
  checks(() => `sqlite:${join(dir.dir, `db${++n}`, 'receiver.db')}`, () => null);

  it('the database locked by another process past the busy timeout (5 s): answered 500 after one wait, not retried callback by callback (the event loop blocked each time); stored once the lock is gone', async () => {
    const file = join(dir.dir, 'locked', 'receiver.db');
    const r = await startReceiver({ db: `sqlite:${file}`, secretFile: dir.secretFile });
    const locker = spawn(nodeBinary(nodeVersions.lts24), ['-e', "const d = new (require('node:sqlite').DatabaseSync)(process.argv[1]); d.exec('BEGIN IMMEDIATE'); console.log('locked'); process.stdin.on('end', () => d.exec('ROLLBACK')).resume();", file], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve, reject) => {
        locker.stdout!.once('data', resolve);
        locker.once('exit', reject);
      });
      const body = JSON.stringify(callbackBody('locked'));
      const headers = { 'x-bootstrap-signature-256': sign('receiver-test-key', body) };
      const t0 = Date.now();
      assert.equal((await r.post(body, headers)).status, 500);
      assert.ok(Date.now() - t0 < 9000, `answered after ${Date.now() - t0} ms: one busy timeout, not one more per callback`);
      locker.stdin!.end();
      await new Promise((resolve) => locker.once('exit', resolve));
      assert.equal((await r.post(body, headers)).status, 200);
    } finally {
      locker.kill('SIGKILL');
      await r.kill();
    }
  });
});

describe('storage: PostgreSQL', () => {
  const bin = postgresBin();
  if (typeof bin !== 'string') {
    it(`skipped: ${bin.missing}`, { skip: bin.missing }, () => {});
    return;
  }
  let pg: Postgres | null = null;
  let n = 0;
  before(async () => {
    const started = await startPostgres();
    if ('missing' in started) throw new Error(started.missing);
    pg = started;
  });
  it('receivers migrating one new database at once: each waits for the other, none fails, the migration is applied once', async () => {
    const url = pg!.createDatabase(`receiver_${process.pid}_race`);
    // The receiver's own code (the pg driver needs no node:sqlite): 4 sessions at once widen the race.
    const { openDriver } = (await import('../../receiver/src/storage/driver.js')) as typeof import('../../receiver/src/storage/driver.js');
    const { migrate } = (await import('../../receiver/src/storage/migrations.js')) as typeof import('../../receiver/src/storage/migrations.js');
    const drivers = await Promise.all([1, 2, 3, 4].map(() => openDriver(url)));
    try {
      const applied = await Promise.all(drivers.map((d) => migrate(d)));
      assert.deepEqual(applied.flat(), [1]);
    } finally {
      await Promise.all(drivers.map((d) => d.close()));
    }
  });
  checks(
    () => pg!.createDatabase(`receiver_${process.pid}_${++n}`),
    (url) => Number(pg!.sql(new URL(url).pathname.slice(1), 'SELECT count(*) FROM schema_migrations').trim()),
  );
  // After the receivers of checks() are gone.
  after(() => pg?.stop());
});
