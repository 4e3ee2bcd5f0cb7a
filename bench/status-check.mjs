// Cost of the monitoring probe: median wall time of `bootstrap server.status --check` against
// `bootstrap server.status`, on the example config (without the os-refresh-config lock) and a provisioned state dir, measured
// interleaved in one run. A monitor calls it every minute. Goal: ratio <= 1.2.
// Usage: node bench/status-check.mjs [ROUNDS] [BOOTSTRAP_BIN]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave, wallMs } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const rounds = Number(process.argv[2] ?? 30);
const bin = process.argv[3] ?? join(root, 'bin/bootstrap');
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-'));
const state = join(dir, 'state');
const phases = join(dir, 'phases');
// The example's ini, without the machine's os-refresh-config lock (held while CI runs).
const ini = join(dir, 'bootstrap.ini');
writeFileSync(ini, readFileSync(join(root, 'etc/bootstrap.ini'), 'utf8').replace(/^\[phases\][ \t]*$/m, "[phases]\norc_lockfile = ''"));
const common = ['--config', ini, '--state-dir', state, '--phases-dir', phases];
try {
  // A provisioned server (an empty phases tree runs no step): the probe then exits 0.
  mkdirSync(phases);
  wallMs(process.execPath, [bin, 'server.provision', '-q', ...common]);
  const m = interleave(rounds, {
    status: () => wallMs(process.execPath, [bin, 'server.status', ...common]),
    check: () => wallMs(process.execPath, [bin, 'server.status', '--check', ...common]),
  });
  const ratio = m.check / m.status;
  console.log(`status-check: server.status ${m.status.toFixed(1)} ms, server.status --check ${m.check.toFixed(1)} ms (median of ${rounds}), ratio ${ratio.toFixed(2)} (goal <= 1.2)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
