// Start-up cost of the CLI: median wall time of `bootstrap product.get --json` on the example
// config against the floor `node -e ''`, measured interleaved in one run. Goal: ratio <= 1.6.
// Usage: node bench/startup.mjs [ROUNDS] [BOOTSTRAP_BIN]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave, wallMs } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const rounds = Number(process.argv[2] ?? 30);
const bin = process.argv[3] ?? join(root, 'bin/bootstrap');
const state = mkdtempSync(join(tmpdir(), 'bootstrap-bench-'));
const config = join(root, 'etc/bootstrap.ini');
try {
  const m = interleave(rounds, {
    node: () => wallMs(process.execPath, ['-e', '']),
    bootstrap: () => wallMs(process.execPath, [bin, 'product.get', '--json', '--config', config, '--state-dir', state]),
  });
  const ratio = m.bootstrap / m.node;
  console.log(`startup: node -e '' ${m.node.toFixed(1)} ms, bootstrap product.get --json ${m.bootstrap.toFixed(1)} ms (median of ${rounds}), ratio ${ratio.toFixed(2)} (goal <= 1.6)`);
} finally {
  rmSync(state, { recursive: true, force: true });
}
