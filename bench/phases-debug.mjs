// BENCH_DEBUG=1 of bench/phases.mjs: where a run's time goes. Two views.
//
// From outside, medians of interleaved runs, each one layer more than the one before:
//   node -e ''                           node's own start-up
//   bootstrap product.get --json         + the CLI bundle, config and state (no run)
//   bootstrap -q server.refresh, 0 steps + a run's fixed cost (run lock, snapshot, plan, facts,
//                                          launcher spawn, journal, state, last_run)
//   ... 300 steps, -q and logging        + the steps; per step = (300 − 0 steps) / 300, in each
//                                          mode (logging: the default, winston loaded, lines to a pipe)
//   lib/launcher.bash alone, 0 and 300   the launcher's own fork/exec per step, fed its commands
//                                          from a file (no agent): the rest of a step is the agent's
//   bash `set -m` loop over the files    the floor of any bash launcher: bash's fork, a process
//                                          group, exec, wait; nothing else (dash's loop, vfork
//                                          and no process groups, shown for scale)
//   run-parts, 0 and 300                 the yardstick
// Then CPU time (user + sys of the command and all it waited for, from bash's `times`): steadier
// than wall time on a loaded machine, where run-parts' many short waits suffer more than ours.
// From inside, one -v run of the 300 steps: the ISO timestamps of its log lines (ms) against the
// moment it was spawned: start-up to the run lock, lock to plan, plan to the first step, the
// steps, the last step to the final line, the final line to exit. (The journal's step durations
// cannot split a step's time further: a step's clock starts when the one before it ends.)
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { interleave, median, wallMs } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;

export async function breakdown({ rounds, dir, states = dir, ini, bin, configure, steps }) {
  const node = process.execPath;
  const empty = join(dir, 'empty');
  mkdirSync(join(empty, 'configure.d'), { recursive: true });
  const argsFor = (phases, state) => [bin, '--config', ini, '--state-dir', join(states, state), '--phases-dir', phases];
  const full = argsFor(join(dir, 'phases'), 'state');
  const none = argsFor(empty, 'state-empty');
  execFileSync(node, [...none, '-q', 'server.provision'], { stdio: 'ignore' });
  const names = readdirSync(configure).sort();
  // Its changes dir as a run's is: in the state dir's runs/ (ext4's T attribute, src/state/state.ts),
  // a name of its own each time (where ext4 places a new dir under such a parent starts from a hash of its name).
  let launches = 0;
  const launcher = (dirOf, list) => launcherMs(dirOf, list, join(states, 'state', 'runs', `launcher-${++launches}.changes`));

  const m = interleave(rounds, {
    node: () => wallMs(node, ['-e', '']),
    cli: () => wallMs(node, [bin, 'product.get', '--json', '--config', ini, '--state-dir', join(states, 'state')]),
    run0: () => wallMs(node, [...none, '-q', 'server.refresh']),
    run0log: () => wallMs(node, [...none, 'server.refresh']),
    run300q: () => wallMs(node, [...full, '-q', 'server.refresh']),
    run300: () => wallMs(node, [...full, 'server.refresh']),
    launcher0: () => launcher(configure, []),
    launcher300: () => launcher(configure, names),
    launcher300bare: () => launcherMs(configure, names, null),
    bashFloor: () => wallMs('bash', ['--noprofile', '--norc', '-c', bashLoop], { cwd: configure }),
    dashLoop: () => wallMs('dash', ['-c', 'for f in *; do "$PWD/$f"; done'], { cwd: configure }),
    runParts0: () => wallMs('run-parts', ['--exit-on-error', join(empty, 'configure.d')]),
    runParts300: () => wallMs('run-parts', ['--exit-on-error', configure]),
  });
  const per = (a, b) => ((a - b) / steps).toFixed(2);
  const row = (what, ms, note = '') => console.log(`  ${what.padEnd(52)} ${ms.toFixed(1).padStart(7)} ms${note ? `  ${note}` : ''}`);
  console.log(`phases debug: medians of ${rounds}, interleaved; ${steps} steps of #!/bin/sh exit 0`);
  row("node start-up (node -e '')", m.node);
  row('CLI bundle + config + state (product.get)', m.cli - m.node, `(product.get ${m.cli.toFixed(1)} ms)`);
  row('a run, fixed (refresh with 0 steps − product.get)', m.run0 - m.cli, `(refresh, 0 steps: ${m.run0.toFixed(1)} ms)`);
  row(`${steps} steps, -q (refresh − refresh with 0 steps)`, m.run300q - m.run0, `${per(m.run300q, m.run0)} ms/step`);
  row('logging, fixed (refresh with 0 steps, default − -q)', m.run0log - m.run0);
  row(`${steps} steps, logging (refresh − refresh with 0 steps)`, m.run300 - m.run0log, `${per(m.run300, m.run0log)} ms/step; logging ${per(m.run300 - m.run0log, m.run300q - m.run0)} ms/step of it`);
  row(`  of which the launcher alone`, m.launcher300 - m.launcher0, `${per(m.launcher300, m.launcher0)} ms/step (launcher with 0 steps: ${m.launcher0.toFixed(1)} ms)`);
  row(`    of which changes file + probe`, m.launcher300 - m.launcher300bare, `${per(m.launcher300, m.launcher300bare)} ms/step (the launcher with no changes dir)`);
  row(`    of which bash's own fork/exec (set -m loop)`, m.bashFloor, `${(m.bashFloor / steps).toFixed(2)} ms/step (dash's loop, no process groups: ${(m.dashLoop / steps).toFixed(2)})`);
  row(`  of which the agent (-q)`, m.run300q - m.run0 - (m.launcher300 - m.launcher0), `${per(m.run300q - m.run0, m.launcher300 - m.launcher0)} ms/step`);
  row(`run-parts, ${steps} steps`, m.runParts300, `${per(m.runParts300, m.runParts0)} ms/step (0 steps: ${m.runParts0.toFixed(1)} ms)`);

  cpuTimes({ rounds, steps, full, none, configure, launcher: () => launcherCpuMs(configure, names, join(states, 'changes')) });
  const inside = [];
  for (let i = 0; i < Math.min(rounds, 5); i++) inside.push(verboseRun(node, full));
  console.log(`phases debug: inside one -v run (${steps} steps), medians of ${inside.length}, from the log's ms timestamps`);
  for (const key of Object.keys(inside[0])) row(key, median(inside.map((r) => r[key])));
  console.log('');
}

const bashLoop = 'set -m; for f in *; do "$PWD/$f"; done';

/** CPU time per step, interleaved medians: bootstrap -q (300 − 0 steps), the launcher's floor, run-parts. */
function cpuTimes({ rounds, steps, full, none, configure, launcher }) {
  const node = process.execPath;
  const c = interleave(Math.min(rounds, 7), {
    run0: () => cpuMs(node, [...none, '-q', 'server.refresh']),
    run300q: () => cpuMs(node, [...full, '-q', 'server.refresh']),
    run300: () => cpuMs(node, [...full, 'server.refresh']),
    launcher300: launcher,
    bashFloor: () => cpuMs('bash', ['--noprofile', '--norc', '-c', bashLoop], configure),
    runParts300: () => cpuMs('run-parts', ['--exit-on-error', configure]),
  });
  const per = (ms) => `${(ms / steps).toFixed(2)} ms/step`;
  const row = (what, ms, note) => console.log(`  ${what.padEnd(52)} ${ms.toFixed(1).padStart(7)} ms  ${note}`);
  console.log(`phases debug: CPU time (user + sys, with all it waited for), medians of ${Math.min(rounds, 7)}`);
  row('refresh, 0 steps (-q)', c.run0, '');
  row(`${steps} steps, -q (refresh − refresh with 0 steps)`, c.run300q - c.run0, `${per(c.run300q - c.run0)}, ${((c.run300q - c.run0) / c.runParts300).toFixed(2)}x run-parts'`);
  row('  of which lib/launcher.bash alone', c.launcher300, `${per(c.launcher300)}, ${(c.launcher300 / c.runParts300).toFixed(2)}x run-parts'`);
  row(`${steps} steps, logging`, c.run300 - c.run0, `${per(c.run300 - c.run0)}`);
  row('bash set -m loop (the floor of a bash launcher)', c.bashFloor, `${per(c.bashFloor)}, ${(c.bashFloor / c.runParts300).toFixed(2)}x run-parts'`);
  row(`run-parts, ${steps} steps`, c.runParts300, per(c.runParts300));
}

/** CPU time (user + sys) of a command and everything it waited for, from bash's `times`. */
function cpuMs(cmd, args, cwd, stdio = ['ignore', 'pipe', 'pipe']) {
  const r = spawnSync('bash', ['--noprofile', '--norc', '-c', '"$@" >/dev/null 2>&1 || exit 1; times', 'cpu', cmd, ...args], { cwd, encoding: 'utf8', stdio });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [user, sys] = r.stdout.trim().split('\n')[1].split(' ').map((t) => {
    const [, min, sec] = /^(\d+)m([\d.]+)s$/.exec(t);
    return Number(min) * 60000 + Number(sec) * 1000;
  });
  return user + sys;
}

/** launcherMs's run, its CPU time. */
function launcherCpuMs(cwd, names, changes) {
  return withLauncher(cwd, names, changes, (fd) => cpuMs('bash', ['--noprofile', '--norc', join(root, 'lib/launcher.bash')], cwd, ['ignore', 'pipe', 'pipe', fd]));
}

/** lib/launcher.bash run as the agent runs it, its commands on fd 3 from a file; changes null: no changes dir. */
function launcherMs(cwd, names, changes) {
  return withLauncher(cwd, names, changes, (fd) => wallMs('bash', ['--noprofile', '--norc', join(root, 'lib/launcher.bash')], { cwd, stdio: ['ignore', 'pipe', 'pipe', fd] }));
}

/** Writes the launcher's commands to a file and runs `run` with it open (the launcher's fd 3). */
function withLauncher(cwd, names, changes, run) {
  if (changes) {
    rmSync(changes, { recursive: true, force: true });
    mkdirSync(changes, { mode: 0o700 });
  }
  const commands = join(cwd, '..', '..', 'launcher.commands');
  const text = `nonce ${cwd}\n4096 t 0 ${changes ?? ''}\n${names.map((n, i) => `R ${i + 1} ${n}\n`).join('')}`;
  writeFileSync(commands, text);
  const fd = openSync(commands, 'r');
  try {
    return run(fd);
  } finally {
    closeSync(fd);
    if (changes) rmSync(changes, { recursive: true, force: true });
  }
}

/** One `-v server.refresh`: the stretches between its log lines' timestamps. */
function verboseRun(node, args) {
  const spawnedAt = Date.now();
  const r = spawnSync(node, [...args, '-v', 'server.refresh'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const exitedAt = Date.now();
  if (r.status !== 0) throw new Error(`-v server.refresh exited ${r.status}: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean).map((l) => ({ at: Date.parse(l.slice(0, 24)), text: l.slice(25) }));
  const find = (re) => lines.find((l) => re.test(l.text))?.at ?? NaN;
  const starts = lines.filter((l) => / starting /.test(l.text)).map((l) => l.at);
  const lock = find(/^debug: run lock /);
  const plan = find(/^debug: plan: /);
  const last = lines[lines.length - 1].at;
  return {
    'spawn → run lock taken (start-up, config, state)': lock - spawnedAt,
    'run lock → plan': plan - lock,
    'plan → first step starts (facts, env, launcher)': starts[0] - plan,
    'first step starts → last step starts': starts[starts.length - 1] - starts[0],
    '  per step': (starts[starts.length - 1] - starts[0]) / (starts.length - 1),
    'last step starts → final line (journal, state)': last - starts[starts.length - 1],
    'final line → exit (flush, exit)': exitedAt - last,
  };
}
