// Cost of a checkup: median wall of `bootstrap heartbeat.checkup --json` with a healthy haproxy
// (runtime API socket) and a healthy http check, against the floor `node -e ''`, interleaved.
// Needs `npm run build` (uses the test helpers in dist/) and Debian's haproxy.
// Usage: node bench/heartbeat.mjs [ROUNDS]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { httpStub, startHaproxy, serverStatus } = await import(join(root, 'dist/test/helpers/servers.js'));
const { spawn } = await import('node:child_process');
const rounds = Number(process.argv[2] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-hb-'));
const backend = await httpStub();
const haproxy = await startHaproxy(dir, { app: [backend.port] });

// The runs are timed asynchronously: the backend answers haproxy's checks from this process.
function wall(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

try {
  await haproxy.waitFor((csv) => serverStatus(csv, 'app', 's1') === 'UP');
  const ini = join(dir, 'bootstrap.ini');
  writeFileSync(ini, `[server]\nmodes = active\n[heartbeat.haproxy]\ntype = haproxy\nsocket = ${haproxy.socket}\n[heartbeat.deepfiler]\ntype = http\nurl = ${backend.url}/health\n`);
  const args = [join(root, 'bin/bootstrap'), 'heartbeat.checkup', '--json', '--config', ini, '--state-dir', join(dir, 'state')];
  const times = { node: [], checkup: [] };
  for (let i = 0; i < rounds; i++) {
    times.node.push(await wall(process.execPath, ['-e', '']));
    times.checkup.push(await wall(process.execPath, args));
  }
  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const [n, c] = [median(times.node), median(times.checkup)];
  console.log(`heartbeat: node -e '' ${n.toFixed(1)} ms, bootstrap heartbeat.checkup --json (haproxy socket + http) ${c.toFixed(1)} ms, ratio ${(c / n).toFixed(2)}, median of ${rounds}`);
} finally {
  await haproxy.stop('SIGKILL');
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
}
