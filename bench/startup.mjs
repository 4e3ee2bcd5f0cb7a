// Start-up cost of the CLI: median wall time of `bootstrap product.get --json` on the example
// config against the floor `node -e ''`, measured interleaved in one run. Goal: ratio <= 1.6.
// The V8 code cache beside the bundle is made by one Node build (the build's, or the bundled
// Node's in bootstrap-agent-node): it says whether this Node accepts it, and what it saves (or,
// rejected, costs) against a start that compiles without it (BOOTSTRAP_DEBUG set skips it).
// It also times the floor: a Node that only reads the bundle and its cache and compiles it (runs
// nothing), i.e. what loading 0.5 MB of code costs on this Node, whatever the code does.
// Usage: [NODE] bench/startup.mjs [ROUNDS] [BOOTSTRAP_BIN]   (run with the Node to measure)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { benchEnv, interleave, wallMs } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const rounds = Number(process.argv[2] ?? 30);
const bin = process.argv[3] ?? join(root, 'bin/bootstrap');
const state = mkdtempSync(join(tmpdir(), 'bootstrap-bench-'));
const config = join(root, 'etc/bootstrap.ini');
const args = [bin, 'product.get', '--json', '--config', config, '--state-dir', state];
const bundle = join(dirname(bin), '..', 'dist', 'bootstrap.cjs');
/** Reads the bundle and the code cache product.get loads, as bin/bootstrap does, and compiles it; prints V8's verdict. */
const load = "const fs=require('node:fs'),vm=require('node:vm'),M=require('node:module'),f=process.argv[1];" +
  "const s=new vm.Script(M.wrap(fs.readFileSync(f,'utf8')),{filename:f,cachedData:fs.readFileSync(f+'.query.cache')});process.stdout.write(s.cachedDataRejected?'rejected':'accepted')";
try {
  const m = interleave(rounds, {
    node: () => wallMs(process.execPath, ['-e', '']),
    bootstrap: () => wallMs(process.execPath, args),
    uncached: () => wallMs(process.execPath, args, { env: { ...benchEnv, BOOTSTRAP_DEBUG: '1' } }),
    load: () => wallMs(process.execPath, ['-e', load, bundle]),
  });
  const ratio = m.bootstrap / m.node;
  console.log(`startup: node ${process.version}: node -e '' ${m.node.toFixed(1)} ms, bootstrap product.get --json ${m.bootstrap.toFixed(1)} ms (median of ${rounds}), ratio ${ratio.toFixed(2)} (goal <= 1.6)`);
  const delta = m.bootstrap - m.uncached;
  const verdict = cacheVerdict();
  console.log(`startup: code cache ${verdict} by this Node: ${m.bootstrap.toFixed(1)} ms with it, ${m.uncached.toFixed(1)} ms compiling the bundle (${delta >= 0 ? '+' : ''}${delta.toFixed(1)} ms)`);
  const how = verdict === 'accepted' ? 'with its cache' : 'compiling it (cache rejected)';
  console.log(`startup: floor: reading the bundle ${how}, nothing run, ${m.load.toFixed(1)} ms, ratio ${(m.load / m.node).toFixed(2)}`);
} finally {
  rmSync(state, { recursive: true, force: true });
}

/** 'accepted' or 'rejected': what V8 says of dist/bootstrap.cjs.query.cache when bin/bootstrap loads it. */
function cacheVerdict() {
  const r = spawnSync(process.execPath, ['-e', load, bundle], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : `unknown (${r.stderr.trim()})`;
}
