// Per-step overhead of the pipeline: a configure.d with 300 trivial #!/bin/sh steps, median
// wall of `bootstrap server.refresh` (on a provisioned state dir) against Debian's
// `run-parts --exit-on-error` on the same dir, interleaved in one run, in both output modes: the
// default (as the timer runs it, logging to a pipe) and -q.
// Goal: at most 2.0x run-parts in each mode (dib-run-parts, os-refresh-config's runner, was
// ~11.5 ms a step).
// With BENCH_DEBUG=1 it also prints where the time goes (bench/phases-debug.mjs). With
// BENCH_BASELINE=<another bin/bootstrap> (a build of main, say) it runs that one too, interleaved
// with the rest, and prints its ratios: a before/after taken in one run, on one machine's load.
// It prints the filesystem of the state dir, where a run creates a file per step: on an ext4
// without a journal (this CI machine's root) back-to-back runs cost ~1 ms a step more than on a
// journaled one, unless runs/ has ext4's T attribute, which the agent gives it when it creates it
// (src/state/state.ts, docs/pipeline.md). BENCH_STATE_PARENT=DIR puts the state dirs there (the steps stay in TMPDIR).
// Usage: [BENCH_DEBUG=1] [BENCH_BASELINE=BIN] [BENCH_STATE_PARENT=DIR] node bench/phases.mjs [ROUNDS] [BOOTSTRAP_BIN]
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesystemOf, interleave, wallMs } from './lib.mjs';
import { breakdown } from './phases-debug.mjs';

const root = new URL('..', import.meta.url).pathname;
const rounds = Number(process.argv[2] ?? 15);
const bin = process.argv[3] ?? join(root, 'bin/bootstrap');
const steps = 300;
const dir = mkdtempSync(join(tmpdir(), 'bootstrap-bench-phases-'));
let states = dir;
try {
  if (process.env.BENCH_STATE_PARENT) states = mkdtempSync(join(process.env.BENCH_STATE_PARENT, 'bootstrap-bench-state-'));
  const phases = join(dir, 'phases');
  const configure = join(phases, 'configure.d');
  mkdirSync(configure, { recursive: true });
  for (let i = 1; i <= steps; i++) {
    const f = join(configure, `${String(i).padStart(3, '0')}-step`);
    writeFileSync(f, '#!/bin/sh\nexit 0\n');
    chmodSync(f, 0o755);
  }
  // The example's config, but never the machine's os-refresh-config lock (as scripts/code-cache.mjs
  // does): a machine where something holds it made the bench exit 75 at once.
  const ini = join(dir, 'bootstrap.ini');
  writeFileSync(ini, readFileSync(join(root, 'etc/bootstrap.ini'), 'utf8').replace(/^\[phases\][ \t]*$/m, "[phases]\norc_lockfile = ''"));
  const argsOf = (b, state) => [b, '--config', ini, '--state-dir', join(states, state), '--phases-dir', phases];
  const args = argsOf(bin, 'state');
  const baseline = process.env.BENCH_BASELINE ? argsOf(process.env.BENCH_BASELINE, 'state-baseline') : null;
  for (const a of [args, baseline]) if (a) execFileSync(process.execPath, [...a, '-q', 'server.provision'], { stdio: 'ignore' });
  const loadBefore = loadavg()[0];
  if (process.env.BENCH_DEBUG) await breakdown({ rounds, dir, states, ini, bin, configure, steps });
  const m = interleave(rounds, {
    runParts: () => wallMs('run-parts', ['--exit-on-error', configure]),
    quiet: () => wallMs(process.execPath, [...args, '-q', 'server.refresh']),
    logging: () => wallMs(process.execPath, [...args, 'server.refresh']),
    node: () => wallMs(process.execPath, ['-e', '']),
    ...(baseline && {
      baseQuiet: () => wallMs(process.execPath, [...baseline, '-q', 'server.refresh']),
      baseLogging: () => wallMs(process.execPath, [...baseline, 'server.refresh']),
    }),
  });
  // The goal is for a quiet machine: on a loaded one run-parts' many short waits suffer more than
  // ours, and the ratios drop; the per-step ms are steadier.
  console.log(`load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after; state dir on ${filesystemOf(states)}`);
  const rows = [['default', m.logging, ''], ['-q', m.quiet, '']];
  if (baseline) rows.push(['default', m.baseLogging, 'baseline '], ['-q', m.baseQuiet, 'baseline ']);
  for (const [mode, ms, which] of rows) {
    const perStep = (ms - m.node) / steps;
    console.log(
      `${which}phases (${mode}): ${steps} steps: run-parts ${m.runParts.toFixed(0)} ms (${(m.runParts / steps).toFixed(2)} ms/step), bootstrap server.refresh ${ms.toFixed(0)} ms ` +
        `(${perStep.toFixed(2)} ms/step over node start-up ${m.node.toFixed(0)} ms); ratio ${(ms / m.runParts).toFixed(2)} (goal <= 2.0), median of ${rounds}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  if (states !== dir) rmSync(states, { recursive: true, force: true });
}
