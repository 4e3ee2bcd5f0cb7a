// What facts cost a run. (1) The built-in facts, measured inside real runs (`builtin_ms` of
// facts.json, written by each run): goal under 5 ms. (2) explorer.d runs in parallel: 10
// explorers that each sleep 0.2 s, collected by `server.facts --refresh` (`explorers_ms`),
// against the 2.0 s they would take one after another: goal about 0.2 s. (3) A whole
// `server.refresh` of 20 trivial steps with and without the facts' cost on the same tree, as a
// ratio (the built-in facts run on every run; there is no switch, so the difference is read
// from builtin_ms against the run's wall time).
// Usage: node bench/facts.mjs [ROUNDS]
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, wallMs } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const rounds = Number(process.argv[2] ?? 15);
const bin = join(root, 'bin/bootstrap');
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-facts-'));
const write = (path, body) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
};
try {
  const phases = join(dir, 'phases');
  for (let i = 1; i <= 20; i++) write(join(phases, 'configure.d', `${String(i).padStart(2, '0')}-step`), 'exit 0');
  const state = join(dir, 'state');
  const args = [bin, '--config', join(root, 'etc/bootstrap.ini'), '--state-dir', state, '--phases-dir', phases, '-q'];
  execFileSync(process.execPath, [...args, 'server.provision'], { stdio: 'ignore' });
  const facts = () => JSON.parse(readFileSync(join(state, 'facts.json'), 'utf8'));
  const builtin = [];
  const walls = [];
  for (let i = 0; i < rounds; i++) {
    walls.push(wallMs(process.execPath, [...args, 'server.refresh']));
    builtin.push(facts().builtin_ms);
  }
  const b = median(builtin);
  const w = median(walls);
  console.log(`built-in facts inside a run: median ${b.toFixed(1)} ms, worst ${Math.max(...builtin).toFixed(1)} ms (goal < 5 ms) — ${((b / w) * 100).toFixed(1)}% of a ${w.toFixed(0)} ms server.refresh of 20 steps`);

  for (let i = 0; i < 10; i++) write(join(phases, 'explorer.d', `e${i}`), 'sleep 0.2; echo ok');
  const explorers = [];
  for (let i = 0; i < Math.min(rounds, 7); i++) {
    execFileSync(process.execPath, [...args, 'server.facts', '--refresh'], { stdio: 'ignore' });
    explorers.push(facts().explorers_ms);
  }
  const e = median(explorers);
  console.log(`10 explorers of 0.2 s each: median ${e.toFixed(0)} ms (one after another: 2000 ms) — ratio ${(e / 2000).toFixed(2)} of serial, ${(e / 200).toFixed(2)}x one explorer (goal about 1)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
