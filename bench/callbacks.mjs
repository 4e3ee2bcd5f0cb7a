// Outbox throughput: queue 1,000 callbacks, then one `bootstrap callback.flush` delivers them to
// a local receiver; prints deliveries per second and the agent's peak RSS (GNU time).
// Needs `npm run build`. Usage: node bench/callbacks.mjs [COUNT]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const count = Number(process.argv[2] ?? 1000);
const { Agent } = await import(join(root, 'dist/src/index.js'));
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-cb-'));
let received = 0;
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    res.end();
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
try {
  const ini = join(dir, 'bootstrap.ini');
  writeFileSync(ini, `[server]\nmodes = active\n[callback]\nurl = http://127.0.0.1:${server.address().port}/hook\ntimeout = 600\n`);
  const agent = new Agent({ config: ini, stateDir: join(dir, 'state'), env: {} });
  await agent.store.ensureDir();
  const body = { schema: 'bootstrap.callback', schema_version: 1, kind: 'run', status: 'success', phases: [], products: { haproxy: '2.6' } };
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await agent.queueCallback({ ...body, id: `20261121T100000Z-${i.toString(16).padStart(6, '0')}` });
  const queueMs = performance.now() - t0;
  const t1 = performance.now();
  const { code, rss } = await new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, join(root, 'bin/bootstrap'), 'callback.flush', '-q', '--config', ini, '--state-dir', join(dir, 'state')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, rss: Number(err.trim().split('\n').at(-1)) }));
  });
  const flushMs = performance.now() - t1;
  if (code !== 0 || received !== count) throw new Error(`flush exited ${code}, receiver got ${received} of ${count}`);
  console.log(
    `callbacks: queued ${count} in ${queueMs.toFixed(0)} ms; one callback.flush delivered ${received} in ${flushMs.toFixed(0)} ms = ${(count / (flushMs / 1000)).toFixed(0)} deliveries/s; agent peak RSS ${(rss / 1024).toFixed(1)} MiB`,
  );
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
