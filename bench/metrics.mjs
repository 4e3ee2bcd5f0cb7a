// Cost of the metrics per run: N rewrites of bootstrap.prom (read state.json, the last journal,
// the outbox; render; temp file, chmod, rename) from a realistic state dir (50 journals of a
// 30-step run, 20 callbacks waiting), against the same call with [metrics] off, interleaved.
// Also what an fsync of file and dir would add (metrics/textfile.ts does not fsync). Goal: < 2 ms.
// Needs `npm run build`. Usage: node bench/metrics.mjs [WRITES]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const writes = Number(process.argv[2] ?? 500);
const { Agent } = await import(join(root, 'dist/src/index.js'));
const { familiesOf } = await import(join(root, 'dist/src/metrics/index.js'));
const { renderFamilies } = await import(join(root, 'dist/src/metrics/render.js'));
const { writeFileAtomic } = await import(join(root, 'dist/src/state/atomic.js'));
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-metrics-'));

/** A state dir as a server's after days of runs: one real 30-step run, its journal copied to 50, 20 callbacks queued. */
async function realisticStateDir(prom) {
  const phases = join(dir, 'phases');
  for (let i = 0; i < 30; i++) {
    const path = join(phases, 'configure.d', `${String(i).padStart(2, '0')}-step`);
    mkdirSync(join(phases, 'configure.d'), { recursive: true });
    writeFileSync(path, `#!/bin/sh\necho "step ${i} output"\n`);
    chmodSync(path, 0o755);
  }
  const ini = (textfile) => `[server]\nname = web-01\nmodes = active\n[phases]\norc_lockfile = ''\n[callback]\nurl = http://127.0.0.1:9/never\n${textfile ? `[metrics]\ntextfile_dir = ${prom}\n` : ''}`;
  writeFileSync(join(dir, 'on.ini'), ini(true));
  writeFileSync(join(dir, 'off.ini'), ini(false));
  const options = (config) => ({ config: join(dir, config), stateDir: join(dir, 'state'), phasesDir: phases, env: { PATH: process.env.PATH } });
  const on = new Agent(options('on.ini'));
  const off = new Agent(options('off.ini'));
  const outcome = await off.provision({ callbackUrl: undefined });
  if (outcome.status !== 'success') throw new Error(`the setup run: ${outcome.status}`);
  const journal = JSON.parse(readFileSync(outcome.journalPath, 'utf8'));
  for (let i = 1; i < 50; i++) {
    const id = `20261120T${String(i).padStart(6, '0')}Z-abcdef`;
    writeFileSync(join(dir, 'state/runs', `${id}.json`), JSON.stringify({ ...journal, id }));
  }
  const body = { schema: 'bootstrap.callback', schema_version: 1, kind: 'run', status: 'success', phases: [], products: {} };
  for (let i = 0; i < 20; i++) await off.queueCallback({ ...body, id: `20261121T100000Z-${i.toString(16).padStart(6, '0')}` });
  return { on, off };
}

/** Wall and CPU (user + system of this process: what a loaded machine stretches less) ms per call. */
async function msPer(n, fn) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return { wall: Number(process.hrtime.bigint() - t0) / 1e6 / n, cpu: (c.user + c.system) / 1000 / n };
}

try {
  const prom = join(dir, 'prom');
  mkdirSync(prom);
  const { on, off } = await realisticStateDir(prom);
  const source = { config: on.config(), stateDir: on.stateDir, store: on.store };
  const text = renderFamilies(await familiesOf('run', source));
  const rounds = 10;
  const times = { on: [], off: [], read: [], fsync: [] };
  for (let r = 0; r < rounds; r++) {
    times.off.push(await msPer(writes / rounds, () => off.writeMetrics('run')));
    times.on.push(await msPer(writes / rounds, () => on.writeMetrics('run')));
    times.read.push(await msPer(writes / rounds, async () => renderFamilies(await familiesOf('run', source))));
    times.fsync.push(await msPer(writes / rounds, () => writeFileAtomic(join(prom, 'fsync.prom'), text, 0o644)));
  }
  const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const m = (k, f) => median(times[k].map((t) => t[f]));
  const per = m('on', 'wall') - m('off', 'wall');
  console.log(
    `metrics: ${writes} writes of bootstrap.prom (${text.length} bytes; 50 journals, 20 callbacks waiting): ${per.toFixed(3)} ms per write, ` +
      `${(m('on', 'cpu') - m('off', 'cpu')).toFixed(3)} ms CPU (metrics off: ${m('off', 'wall').toFixed(3)} ms per call); reading + rendering alone ${m('read', 'wall').toFixed(3)} ms; ` +
      `a durable write (atomic.ts, fsync of file and dir) alone ${m('fsync', 'wall').toFixed(3)} ms; goal < 2 ms: ${per < 2 ? 'met' : 'NOT met'}; medians of ${rounds} rounds; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
