// The reference receiver under load: 10,000 signed callbacks from 200 simulated servers (runs that
// succeed, fail or are refused, checkups, verifies; 3% redelivered with the same delivery id,
// some while the first is still in flight), 32 in flight over keep-alive connections. Prints the
// accepted rate, p50/p99 latency, the duplicates acknowledged, and "lost" (unique callbacks sent
// minus those the JSON API then shows), with the load average. Goals: >= 500/s on SQLite, p99 <
// 50 ms, 0 lost. Every body is checked against schema/callback.schema.json before it is sent.
// Needs `npm run build` (and the cached Node 24 of the tests, node:sqlite). Usage:
//   node bench/receiver.mjs [--count 10000] [--servers 200] [--concurrency 32] [--db postgres://…]
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const { values: opt } = parseArgs({
  options: { count: { type: 'string', default: '10000' }, servers: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '32' }, db: { type: 'string' }, redeliver: { type: 'string', default: '0.03' } },
});
const count = Number(opt.count);
const nServers = Number(opt.servers);
const concurrency = Number(opt.concurrency);
const { nodeBinary, nodeVersions } = await import(join(root, 'dist/test/helpers/node-bins.js'));
const { validate } = await import(join(root, 'dist/test/helpers/json-schema.js'));
const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));

/** A small seeded PRNG: the same plan on every run. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20261205);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const phaseNames = ['pre-configure', 'configure', 'migration', 'post-configure'];
let seq = 0;
const iso = (ms) => new Date(ms).toISOString();
const runId = (ms) => `${iso(ms).replace(/[-:]|\.\d+/g, '').slice(0, 15)}Z-${(++seq).toString(16).padStart(6, '0')}`;

/** One server's coherent history: last success and failures since carried from callback to callback. */
function makeServer(i) {
  return { name: `srv-${String(i).padStart(3, '0')}`, flaky: rand() < 0.1, lastSuccess: null, failures: 0, mode: pick(['active', 'standby']), haproxy: pick(['2.6', '2.8']) };
}

function runBody(s, at) {
  const r = rand();
  const status = r < (s.flaky ? 0.5 : 0.88) ? 'success' : r < 0.97 ? 'failure' : 'refused';
  const action = pick(['refresh', 'refresh', 'refresh', 'upgrade', 'mode']);
  const id = runId(at);
  const started = at - 5000 - Math.floor(rand() * 60_000);
  const failedAt = status === 'failure' ? Math.floor(rand() * phaseNames.length) : -1;
  const phases = status === 'refused' ? [] : phaseNames.map((phase, n) => ({ phase, status: n < failedAt || failedAt < 0 ? 'success' : n === failedAt ? 'failure' : 'not run', steps: 3 + n, failed: n === failedAt ? 1 : 0, duration_ms: n > failedAt && failedAt >= 0 ? 0 : 200 + Math.floor(rand() * 5000) }));
  const failure =
    status === 'failure' ? { phase: phaseNames[failedAt], step: `${20 + failedAt}-app`, kind: pick(['exit', 'timeout', 'check']), exit_code: 3, message: 'exit 3: could not reach the package mirror\nE: Unable to fetch some archives' }
    : status === 'refused' ? { phase: 'agent', step: 'plan', kind: 'refused', exit_code: 77, message: 'configure.d/10-app is writable by group: refusing to run it' }
    : null;
  if (status === 'success') s.lastSuccess = { id, action, finished_at: iso(at) };
  s.failures = status === 'success' ? 0 : s.failures + 1;
  const changed = status === 'success' ? Math.floor(rand() * 3) : 0;
  return {
    schema: 'bootstrap.callback', schema_version: 1, kind: 'run', id, server: s.name, action, status, exit_code: status === 'success' ? 0 : failure.exit_code,
    started_at: iso(started), finished_at: iso(at), duration_ms: at - started, mode: s.mode, products: { haproxy: s.haproxy, nginx: '1.22' },
    label: rand() < 0.3 ? `rollout-${Math.floor(at / 86_400_000) % 100} batch-${Math.floor(rand() * 5)}` : null,
    counts: { changed, unchanged: 12 - changed, skipped: 1, failed: status === 'failure' ? 1 : 0 },
    changes: changed ? [{ phase: 'configure', step: '20-haproxy', changes: [`haproxy.cfg: maxconn ${1000 * changed}`, 'reloaded haproxy'] }] : [],
    last_success: s.lastSuccess, failed_runs_since_success: s.failures,
    facts: { os: 'debian', os_version: '12', cpus: 4, memory_mb: 8192, kernel: '6.1.0-27-amd64' },
    failure, phases, heartbeat: null,
  };
}

function checkupBody(s, at) {
  const healthy = rand() < (s.flaky ? 0.7 : 0.97);
  const results = ['haproxy', 'http', 'tcp'].map((type) => ({ name: `${type}-main`, type, healthy: type !== 'http' || healthy, latency_ms: Math.floor(rand() * 40), detail: type === 'http' && !healthy ? 'HTTP 503 from http://127.0.0.1:8080/health' : 'ok' }));
  const heartbeat = { healthy, started_at: iso(at - 60), finished_at: iso(at), results, mode: s.mode };
  return {
    schema: 'bootstrap.callback', schema_version: 1, kind: 'checkup', id: runId(at), server: s.name, action: 'checkup', status: healthy ? 'success' : 'failure', exit_code: healthy ? 0 : 1,
    started_at: iso(at - 60), finished_at: iso(at), duration_ms: 60, mode: s.mode, products: { haproxy: s.haproxy, nginx: '1.22' }, label: null,
    failure: null, phases: [], heartbeat, last_success: s.lastSuccess, failed_runs_since_success: s.failures, disabled: null,
  };
}

function verifyBody(s, at) {
  const drift = rand() < 0.2;
  const steps = [{ phase: 'configure', step: '20-haproxy', result: drift ? 'drift' : 'ok', message: drift ? 'haproxy.cfg differs from the rendered template' : null }, { phase: 'configure', step: '30-app', result: 'no check', message: null }];
  return {
    schema: 'bootstrap.callback', schema_version: 1, kind: 'verify', id: runId(at), server: s.name, action: 'verify', status: drift ? 'drift' : 'success', exit_code: drift ? 1 : 0,
    started_at: iso(at - 900), finished_at: iso(at), duration_ms: 900, mode: s.mode, products: { haproxy: s.haproxy, nginx: '1.22' }, label: null,
    failure: null, phases: [{ phase: 'configure', status: drift ? 'failure' : 'success', steps: 2, failed: drift ? 1 : 0, duration_ms: 900 }], heartbeat: null,
    verify: { status: drift ? 'drift' : 'ok', ok: drift ? 0 : 1, drift: drift ? 1 : 0, no_check: 1, skipped: 0, error: 0, steps },
  };
}

/** The sends, in order: unique callbacks round-robin over the servers, redeliveries 20-400 sends after their first. */
function plan() {
  const dups = Math.floor(count * Number(opt.redeliver));
  const unique = count - dups;
  const servers = Array.from({ length: nServers }, (_, i) => makeServer(i));
  const perServer = Math.ceil(unique / nServers);
  const t0 = Date.now() - perServer * 600_000;
  const sends = [];
  for (let k = 0; k < unique; k++) {
    const s = servers[k % nServers];
    const at = t0 + Math.floor(k / nServers) * 600_000 + (k % nServers) * 1000;
    const r = rand();
    const body = JSON.stringify(r < 0.6 ? runBody(s, at) : r < 0.95 ? checkupBody(s, at) : verifyBody(s, at));
    sends.push({ order: k, body, server: s.name, id: JSON.parse(body).id, redelivery: false });
  }
  for (const k of [...new Set(Array.from({ length: dups * 2 }, () => Math.floor(rand() * unique)))].slice(0, dups)) {
    sends.push({ ...sends[k], order: k + 20 + rand() * 380, redelivery: true });
  }
  if (sends.length !== count) throw new Error(`planned ${sends.length} sends, not ${count}: raise --count`);
  return { servers, sends: sends.sort((a, b) => a.order - b.order), unique };
}

function startReceiver(dir, db) {
  const secret = join(dir, 'callback.secret');
  writeFileSync(secret, 'bench-key\n', { mode: 0o600 });
  const child = spawn(nodeBinary(nodeVersions.lts24), [join(root, 'receiver/bin/bootstrap-receiver'), '--listen', '127.0.0.1:0', '--db', db, '--secret-file', secret, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the receiver did not listen within 30 s:\n${out}`)), 30_000);
    child.stdout.on('data', () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]), clearTimeout(timer));
    });
    child.on('exit', (code) => reject(new Error(`the receiver exited (${code}):\n${out}`), clearTimeout(timer)));
  });
  return { child, port, output: () => out };
}

function post(agent, port, body, delivery) {
  return new Promise((resolve) => {
    const t = performance.now();
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-bootstrap-delivery': delivery, 'x-bootstrap-signature-256': `sha256=${createHmac('sha256', 'bench-key').update(body).digest('hex')}` };
    const req = request({ host: '127.0.0.1', port, path: '/callback', method: 'POST', headers, agent, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t, text }));
    });
    req.on('error', (e) => resolve({ status: `error ${e.code ?? e.message}`, ms: performance.now() - t, text: '' }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

/** Runs `work` over `items` with at most `n` in flight. */
async function pool(items, n, work) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

async function get(port, path) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

/** A process's CPU time so far (user + system; Linux clock ticks of 10 ms), in ms: what the receiver cost, whatever the load. */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmtLoad = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-receiver-'));
const db = opt.db ?? `sqlite:${join(dir, 'receiver.db')}`;
let receiver;
try {
  const { sends, unique } = plan();
  for (const s of sends.slice(0, unique)) {
    const errors = validate(schema, JSON.parse(s.body));
    if (errors.length) throw new Error(`a planned body does not fit the schema: ${errors.join('; ')}`);
  }
  receiver = startReceiver(dir, db);
  const port = await receiver.port;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const loadBefore = fmtLoad();
  const ms = [];
  const statuses = {};
  let duplicates = 0;
  const cpu0 = cpuMs(receiver.child.pid);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(sends, concurrency, async (s) => {
    const r = await post(agent, port, s.body, s.id);
    ms.push(r.ms);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status === 200 && JSON.parse(r.text).duplicate) duplicates++;
  });
  const wallMs = performance.now() - t0;
  const cpu = cpuMs(receiver.child.pid) - cpu0;
  const self = process.cpuUsage(self0);
  const selfMs = (self.user + self.system) / 1000;
  const loadAfter = fmtLoad();
  agent.destroy();
  ms.sort((a, b) => a - b);
  // Read back: each server's stored callbacks through the JSON API.
  const stored = new Map();
  const names = [...new Set(sends.map((s) => s.server))];
  await pool(names, 8, async (name) => stored.set(name, new Set((await get(port, `/api/servers/${name}?runs=1000`)).runs.map((r) => r.id))));
  const lost = sends.filter((s) => !s.redelivery && !stored.get(s.server)?.has(s.id)).length;
  const storedTotal = [...stored.values()].reduce((n, ids) => n + ids.size, 0);
  const fleet = await get(port, '/api/fleet');
  const rss = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${receiver.child.pid}/status`, 'utf8'))?.[1];
  const accepted = statuses[200] ?? 0;
  console.log(`receiver bench (${db.startsWith('sqlite:') ? 'SQLite' : 'PostgreSQL'}, Node ${nodeVersions.lts24}): ${count} callbacks (${unique} unique, ${count - unique} redelivered) from ${names.length} servers, ${concurrency} in flight`);
  console.log(`  accepted ${accepted} in ${(wallMs / 1000).toFixed(2)} s = ${((accepted / wallMs) * 1000).toFixed(0)} callbacks/s; latency p50 ${pct(ms, 50).toFixed(1)} ms, p99 ${pct(ms, 99).toFixed(1)} ms, max ${ms.at(-1).toFixed(1)} ms`);
  console.log(`  answers ${JSON.stringify(statuses)}; duplicates acknowledged ${duplicates} of ${count - unique}; stored ${storedTotal}, lost ${lost}; fleet page counts ${JSON.stringify(fleet.counts)}`);
  console.log(`  receiver CPU ${(cpu / 1000).toFixed(1)} s = ${(cpu / count).toFixed(2)} ms per callback (one free core: ~${((count / cpu) * 1000).toFixed(0)}/s), ${((cpu / wallMs) * 100).toFixed(0)}% of a core while sending; this client ${((selfMs / wallMs) * 100).toFixed(0)}%`);
  console.log(`  receiver peak RSS ${rss ? (Number(rss) / 1024).toFixed(0) : '?'} MiB; load average before ${loadBefore}, after ${loadAfter}`);
  const goals = [((accepted / wallMs) * 1000 >= 500) || 'rate < 500/s', pct(ms, 99) < 50 || 'p99 >= 50 ms', lost === 0 || `${lost} lost`, duplicates === count - unique || 'a redelivery was not acknowledged as a duplicate'];
  const missed = goals.filter((g) => g !== true);
  console.log(missed.length ? `  goals missed: ${missed.join(', ')}` : '  goals met: >= 500/s, p99 < 50 ms, 0 lost');
  process.exitCode = lost === 0 ? 0 : 1;
} finally {
  if (receiver && receiver.child.exitCode === null) {
    receiver.child.kill('SIGTERM');
    await new Promise((r) => receiver.child.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
}
