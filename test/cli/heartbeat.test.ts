import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { asNobody, json, sandbox, type Sandbox } from '../helpers/cli.js';
import { iniWith, readLines, script } from '../helpers/phases.js';
import { httpStub, serverStatus, startHaproxy, type Haproxy, type HttpStub } from '../helpers/servers.js';

function beats(sections: Record<string, Record<string, string | number>>): string {
  return Object.entries(sections)
    .map(([name, keys]) => `[heartbeat.${name}]\n${Object.entries(keys).map(([k, v]) => `${k} = ${typeof v === 'string' && /[;#]/.test(v) ? `"${v}"` : v}`).join('\n')}\n`)
    .join('\n');
}

describe('heartbeat: a real haproxy', () => {
  let dir: string;
  let haproxy: Haproxy;
  const servers: HttpStub[] = [];
  const health = (s: HttpStub) => s;
  let box: Sandbox;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bootstrap-haproxy-'));
    for (let i = 0; i < 3; i++) servers.push(await httpStub());
    haproxy = await startHaproxy(dir, { app: [servers[0]!.port, servers[1]!.port], api: [servers[2]!.port] });
    await haproxy.waitFor((csv) => ['s1', 's2'].every((s) => serverStatus(csv, 'app', s) === 'UP') && serverStatus(csv, 'api', 's1') === 'UP');
    box = sandbox(iniWith({}, beats({ lb: { type: 'haproxy', socket: haproxy.socket, timeout: 2 }, web: { type: 'haproxy', url: haproxy.statsUrl, backends: 'app', timeout: 2 } })));
  });
  after(async () => {
    await haproxy?.stop('SIGKILL');
    for (const s of servers) await s.close();
    box?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  void health;

  it('all servers up: healthy through the socket and through the stats page', async () => {
    const r = await box.run(['heartbeat.get', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const c = json(r);
    assert.equal(c.healthy, true);
    assert.match(c.results.find((x: any) => x.name === 'lb').detail, /backend api: 1\/1 servers UP; backend app: 2\/2 servers UP|backend app: 2\/2 servers UP; backend api: 1\/1 servers UP/);
    assert.equal(c.results.find((x: any) => x.name === 'web').detail, 'backend app: 2/2 servers UP');
    const human = await box.run(['heartbeat.get', 'lb']);
    assert.match(human.stdout, /^NAME +TYPE +HEALTHY +LATENCY +DETAIL\nlb +haproxy +yes +\d+ ms +backend/);
  });

  it('one server of app stopped: the detail names it DOWN; still healthy while another is UP; same verdict via the stats page', async () => {
    await servers[1]!.close();
    await haproxy.waitFor((csv) => serverStatus(csv, 'app', 's2')?.startsWith('DOWN') ?? false);
    const c = json(await box.run(['heartbeat.get', '--json']));
    const lb = c.results.find((x: any) => x.name === 'lb');
    const web = c.results.find((x: any) => x.name === 'web');
    assert.equal(lb.healthy, true);
    assert.match(lb.detail, /backend app: 1\/2 servers UP; app\/s2 DOWN \([A-Z0-9]+\)/);
    assert.equal(web.healthy, true);
    assert.match(web.detail, /app\/s2 DOWN \([A-Z0-9]+\)/);
  });

  it('every server of a backend stopped: unhealthy, through both ways', async () => {
    await servers[0]!.close();
    await haproxy.waitFor((csv) => serverStatus(csv, 'app', 's1')?.startsWith('DOWN') ?? false);
    const r = await box.run(['heartbeat.checkup', '--json']);
    assert.equal(r.code, 1);
    const c = json(r);
    for (const name of ['lb', 'web']) {
      const x = c.results.find((y: any) => y.name === name);
      assert.equal(x.healthy, false, name);
      assert.match(x.detail, /backend app: 0\/2 servers UP, backend DOWN; app\/s1 DOWN \([A-Z0-9]+\); app\/s2 DOWN \([A-Z0-9]+\)/);
    }
    const status = json(await box.run(['server.status', '--json']));
    assert.equal(status.last_checkup.healthy, false, 'the last checkup is kept and shown');
  });

  it('a socket without permission: unhealthy with the reason', async () => {
    // The agent runs as nobody here; the config must be readable by nobody.
    const open = mkdtempSync(join(tmpdir(), 'bootstrap-open-'));
    chmodSync(open, 0o755);
    writeFileSync(join(open, 'bootstrap.ini'), iniWith({}, beats({ lb: { type: 'haproxy', socket: haproxy.socket } })));
    chmodSync(join(open, 'bootstrap.ini'), 0o644);
    chmodSync(dir, 0o755);
    try {
      const r = await box.run(['heartbeat.get', '--json', '--config', join(open, 'bootstrap.ini')], { prefix: asNobody });
      assert.equal(r.code, 1, r.stderr);
      assert.match(json(r).results[0].detail, /permission denied/);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  it('haproxy stopped: unhealthy, connection refused', async () => {
    await haproxy.stop('SIGKILL');
    const c = json(await box.run(['heartbeat.get', 'lb', 'web', '--json']));
    assert.match(c.results[0].detail, new RegExp(`socket ${haproxy.socket}: connection refused`));
    assert.match(c.results[1].detail, /connection refused/);
  });
});

describe('heartbeat: broken peers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-hb-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function fakeSocket(path: string, answer: (command: string) => string | null) {
    const server = createNetServer((s) => {
      s.on('data', (d) => {
        const reply = answer(d.toString().trim());
        if (reply !== null) s.end(reply);
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return server;
  }

  it('socket path missing, garbage, truncated CSV, a socket that never answers: unhealthy, never a crash', async () => {
    const garbage = await fakeSocket(join(dir, 'garbage.sock'), () => 'hello there\n');
    const truncated = await fakeSocket(join(dir, 'trunc.sock'), (c) => (c === 'show info' ? 'Pid: 42\nUptime_sec: 5\n' : '# pxname,svname,qcur,status,act,bck\napp,BACKEND,0,UP'));
    const silent = await fakeSocket(join(dir, 'silent.sock'), () => null);
    const box = sandbox(
      iniWith(
        {},
        beats({
          missing: { type: 'haproxy', socket: join(dir, 'nope.sock') },
          garbage: { type: 'haproxy', socket: join(dir, 'garbage.sock') },
          trunc: { type: 'haproxy', socket: join(dir, 'trunc.sock') },
          silent: { type: 'haproxy', socket: join(dir, 'silent.sock'), timeout: 1 },
        }),
      ),
    );
    try {
      // Never a hang: the silent socket never answers, so only its timeout ends the command (a
      // hang rejects at 15 s). Timed inside the agent (latency_ms), not from here: a wall-time
      // bound on the whole command (start-up included) failed at 5 s on a loaded 2-core machine.
      const r = await box.run(['heartbeat.get', '--json'], { timeoutMs: 15_000 });
      assert.equal(r.code, 1);
      const d = Object.fromEntries(json(r).results.map((x: any) => [x.name, x]));
      assert.ok(d.silent.latency_ms >= 950 && d.silent.latency_ms < 2500, `silent answered in ${d.silent.latency_ms} ms (timeout 1 s)`);
      assert.match(d.missing.detail, new RegExp(`socket ${join(dir, 'nope.sock')}: no such file`));
      assert.match(d.garbage.detail, /did not answer as haproxy does/);
      assert.match(d.trunc.detail, /truncated|no 'svname'|no 'act'/);
      assert.match(d.silent.detail, /in time/);
      for (const x of Object.values(d) as any[]) assert.equal(x.healthy, false);
    } finally {
      box.cleanup();
      for (const s of [garbage, truncated, silent]) s.close();
    }
  });

  it('deepfiler over http: 200 healthy, 503 unhealthy with the status, body mismatch, a peer that never answers', async () => {
    const ok = await httpStub((_q, res) => res.end('{"status":"ok"}'));
    const down = await httpStub((_q, res) => {
      res.statusCode = 503;
      res.end('maintenance');
    });
    const hang = await httpStub(() => {});
    const box = sandbox(
      iniWith(
        {},
        beats({
          ok: { type: 'http', url: `${ok.url}/health`, expect_body: '"status":"ok"' },
          down: { type: 'http', url: `${down.url}/health` },
          body: { type: 'http', url: `${ok.url}/health`, expect_body: 'ready' },
          hang: { type: 'http', url: `${hang.url}/health`, timeout: 1 },
        }),
      ),
    );
    try {
      // As above: the peer that never answers ends by its timeout, timed inside the agent; a hang rejects at 15 s.
      const c = json(await box.run(['heartbeat.get', '--json'], { timeoutMs: 15_000 }));
      const hangMs = c.results.find((x: any) => x.name === 'hang').latency_ms;
      assert.ok(hangMs >= 950 && hangMs < 1500, `hang answered in ${hangMs} ms (timeout 1 s + 0.5 s)`);
      const d = Object.fromEntries(c.results.map((x: any) => [x.name, x]));
      assert.deepEqual([d.ok.healthy, d.ok.detail], [true, 'HTTP 200']);
      assert.deepEqual([d.down.healthy, d.down.detail], [false, 'HTTP 503, expected 200']);
      assert.equal(d.body.healthy, false);
      assert.match(d.body.detail, /does not match \/ready\//);
      assert.equal(d.hang.healthy, false);
    } finally {
      box.cleanup();
      for (const s of [ok, down, hang]) await s.close();
    }
  });

  it('three checks that hang return in about one timeout, not three; tcp and exec checks', async () => {
    const hang = await httpStub(() => {});
    const listening = await httpStub();
    const silent = await fakeSocket(join(dir, 'silent2.sock'), () => null);
    const box = sandbox(
      iniWith(
        {},
        beats({
          h1: { type: 'http', url: hang.url, timeout: 3 },
          h2: { type: 'haproxy', socket: join(dir, 'silent2.sock'), timeout: 3 },
          h3: { type: 'exec', command: "sh -c 'sleep 30'", timeout: 3 },
          tcp: { type: 'tcp', address: `127.0.0.1:${listening.port}` },
          ok: { type: 'exec', command: "sh -c 'echo all good; echo more'" },
          bad: { type: 'exec', command: "sh -c 'echo broken >&2; exit 3'" },
        }),
      ),
    );
    try {
      // Around the command, only what a hang fails: h3's child sleeps 30 s.
      const r = await box.run(['heartbeat.checkup', '--json'], { timeoutMs: 20_000 });
      assert.equal(r.code, 1, 'unhealthy checks');
      // One after the other they would take 9 s or more; in parallel about 3 s. Timed by the
      // agent's own clock (its started_at and finished_at): a loaded machine's start-up is not
      // what is tested (a 2.5 s bound on 1 s timeouts around the whole command failed at a load of 5).
      const took = Date.parse(json(r).finished_at) - Date.parse(json(r).started_at);
      assert.ok(took < 6000, `checkup took ${took} ms`);
      const d = Object.fromEntries(json(r).results.map((x: any) => [x.name, x]));
      for (const n of ['h1', 'h2', 'h3']) assert.equal(d[n].healthy, false, n);
      assert.match(d.h3.detail, /did not finish in time/);
      assert.deepEqual([d.tcp.healthy, d.ok.healthy, d.ok.detail], [true, true, 'all good']);
      assert.deepEqual([d.bad.healthy, d.bad.detail], [false, 'exit 3: broken']);
      const unknown = await box.run(['heartbeat.get', 'nope']);
      assert.equal(unknown.code, 65);
      assert.match(unknown.stderr, /unknown heartbeat 'nope' \(known: bad, h1, h2, h3, ok, tcp\)/);
    } finally {
      box.cleanup();
      await hang.close();
      await listening.close();
      silent.close();
    }
  });
});

describe('heartbeat: the health gate', () => {
  it('a run whose haproxy backend stays down fails with kind heartbeat, runs error.d, and does not commit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-gate-'));
    const stub = await httpStub();
    const port = stub.port;
    await stub.close(); // nothing listens: the backend's only server is DOWN
    const haproxy = await startHaproxy(dir, { app: [port] });
    const box = sandbox(iniWith({ health_gate: 'true', health_timeout: 2 }, beats({ lb: { type: 'haproxy', socket: haproxy.socket } })));
    try {
      await haproxy.waitFor((csv) => serverStatus(csv, 'app', 's1')?.startsWith('DOWN') ?? false);
      mkdirSync(box.phasesDir, { recursive: true });
      const log = join(box.dir, 'log');
      script(join(box.phasesDir, 'error.d', '10-e'), 'echo "$BOOTSTRAP_FAILURE $BOOTSTRAP_FAILED_PHASE" >> "$LOG"');
      const r = await box.run(['server.mode', 'active', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1, r.stderr);
      const out = json(r);
      assert.equal(out.failure.kind, 'heartbeat');
      assert.match(out.failure.message, /lb: backend app: 0\/1 servers UP/);
      assert.deepEqual(readLines(log), ['heartbeat health']);
      assert.equal((await box.run(['server.mode'])).stdout, 'standby\n', 'mode not committed');
      const journal = json(await box.run(['runs.show', '--json']));
      assert.equal(journal.health.healthy, false);
      // The backend comes back: the gate passes.
      const back = await httpStub(undefined, port);
      await haproxy.waitFor((csv) => serverStatus(csv, 'app', 's1') === 'UP');
      const ok = await box.run(['server.mode', 'active']);
      assert.equal(ok.code, 0, ok.stderr);
      await back.close();
    } finally {
      await haproxy.stop('SIGKILL');
      box.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
