// Runs every compiled test file explicitly (node --test given a folder of .ts files, or a glob
// that matches nothing, runs 0 tests and passes) and fails when a run failed or ran no test.
//
//   node scripts/run-tests.mjs [--node PATH]... [--no-namespaces] [--jobs N] [--serial] [--plan] [FILTER...]
//
// --node: the Node binaries to run the suite on (default: this one). The first also runs the
// files that need network namespaces or booted machines (root, ip netns, systemd-nspawn); the
// others run every other file. The agent runs on the Node under test: tests start it with
// process.execPath, and that Node's directory comes first in PATH for `#!/usr/bin/env node`.
// --no-namespaces: skip those files. FILTER: only files whose path contains one of them.
// --plan: print the schedule below and run nothing.
//
// Schedule (2 cores): the namespace files are mostly waiting on ansible, ssh and booting
// machines, so they run beside the others: the "shared" files (--jobs at once, default 2, more
// with more cores), Node after Node. The "timed" files, whose assertions depend on timing (bounds
// of a second or two over a timeout, kills at measured or random moments), never run beside
// another test file: load makes them flaky, not slower. With one Node they run last, with nothing
// else running. With several (CI), time forbids that (each Node's timed files take ~5 min, the
// namespace files ~20, the shared ones ~5 per Node): two balanced streams, the namespace files then
// the last Node's timed files, and the shared batches then the other timed batches, so a timed
// batch runs beside one other stream at most (measured: 32 min for the old order, ~26 for this).
// scripts/deb.test runs on the first Node only (firstNodeOnly). --serial: every file one after
// the other (as plain `node --test` does on 2 cores). Each batch's TAP goes to its own file,
// dist/test-results-LABEL.tap (LABEL: node20-shared, node22-timed, ...).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist/test');

/** Load-sensitive: timed bounds close to the work they time, or kills at measured/random moments. */
const alone = [
  'scenarios/faults.test.js', // SIGKILL/SIGSTOP at random moments, clock steps; next run within 5 s
  'scenarios/state.test.js', // SIGKILL at fractions of a measured product.set: a load change skews them
  'run/reboot.test.js', // seeded SIGKILL trials during a pause for a reboot and its resume
  'scenarios/safety.test.js', // SIGTERM within 3 s, a run within 5 s with 30,000 callbacks waiting (the agent's clock)
  'scenarios/lock.test.js', // a dead holder taken over within 1 s
  'cli/callback.test.js', // delivery gives up at the callback timeout (+1.5 s by the agent's clock)
  'cli/heartbeat.test.js', // checkups within 3 s
  'cli/outbox.test.js', // delivery within the callback timeout + 1.5 s (the agent's clock)
  'run/pipeline.test.js', // killed at the timeout + grace, within 8 s
];

/**
 * Files that test what does not depend on the Node running the tests, run on the first Node only:
 * the Debian packages carry their own Node or name the system's (built once per commit); the
 * receiver runs on the Node it needs.
 */
const firstNodeOnly = [
  'scenarios/deb.test.js',
  // The receiver runs on its own Node (22.13+, test/helpers/receiver.ts), whichever runs the tests.
  'receiver/agent.test.js',
  'receiver/intake.test.js',
  'receiver/storage.test.js',
  'receiver/unit.test.js',
  'receiver/pages.test.js',
];

function parseArgs(argv) {
  const opts = { nodes: [], namespaces: true, jobs: Math.max(2, availableParallelism() - 1), serial: false, filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--node') opts.nodes.push(argv[++i] && resolve(argv[i]));
    else if (a === '--no-namespaces') opts.namespaces = false;
    else if (a === '--serial') opts.serial = true;
    else if (a === '--plan') opts.planOnly = true;
    else if (a === '--jobs') opts.jobs = Number(argv[++i]);
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else opts.filters.push(a);
  }
  if (opts.nodes.some((n) => !n)) usage('--node needs a path');
  if (!(opts.jobs >= 1)) usage('--jobs needs a number >= 1');
  if (opts.nodes.length === 0) opts.nodes.push(process.execPath);
  return opts;
}

function usage(message) {
  console.error(`run-tests: ${message}\nusage: node scripts/run-tests.mjs [--node PATH]... [--no-namespaces] [--jobs N] [--serial] [--plan] [FILTER...]`);
  process.exit(2);
}

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'helpers' || name === 'fixtures' ? [] : findTests(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

/** A file needs namespaces or machines when it, or a module of the tree it imports, uses them. */
function needsNamespaces(file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  if (/\bip netns\b|'netns'|systemd-nspawn|machinectl/.test(source)) return true;
  const local = [...source.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+\.js)['"]/g)].map((m) => join(dirname(file), m[1]));
  return local.some((dep) => needsNamespaces(dep, seen));
}

/**
 * Phases, one after the other, of streams that run at once, of batches that run one after the
 * other.
 */
function plan(files, opts) {
  const label = (node) => `node${execFileSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim()}`;
  const nodes = opts.nodes.map((node) => ({ node, name: label(node) }));
  const ns = opts.namespaces ? files.filter((f) => needsNamespaces(f)) : [];
  const rest = opts.namespaces ? files.filter((f) => !ns.includes(f)) : files.filter((f) => !needsNamespaces(f));
  const timed = rest.filter((f) => alone.some((a) => f.endsWith(`/${a}`)));
  const shared = rest.filter((f) => !timed.includes(f));
  // The other Nodes' batches run a quarter of the seeded fault trials (test/helpers/trials.ts).
  const batch = (n, kind, list, jobs) => ({ ...n, label: kind ? `${n.name}-${kind}` : n.name, files: list, jobs, quick: n !== nodes[0] });
  const sharedOf = (i) => (i === 0 ? shared : shared.filter((f) => !firstNodeOnly.some((a) => f.endsWith(`/${a}`))));
  const [first, ...others] = nodes;
  const phases = opts.serial
    ? [[nodes.map((n, i) => batch(n, '', [...(i === 0 ? ns : []), ...rest.filter((f) => i === 0 || sharedOf(i).includes(f) || timed.includes(f))].sort(), 1))]]
    : others.length === 0
      ? [[[batch(first, 'namespaces', ns, 1)], [batch(first, 'shared', shared, opts.jobs)]], [[batch(first, 'timed', timed, 1)]]]
      : [
          [
            // CI (several Nodes): the two streams balanced, about 25 min each on 2 cores; every timed
            // batch beside one stream only (the namespace files, or one shared batch's end).
            [batch(first, 'namespaces', ns, 1), batch(others.at(-1), 'timed', timed, 1)],
            [...nodes.map((n, i) => batch(n, 'shared', sharedOf(i), opts.jobs)), batch(first, 'timed', timed, 1), ...others.slice(0, -1).map((n) => batch(n, 'timed', timed, 1))],
          ],
        ];
  return phases.map((streams) => streams.map((s) => s.filter((b) => b.files.length > 0)).filter((s) => s.length > 0));
}

function runBatch(b) {
  const tap = join(root, `dist/test-results-${b.label}.tap`);
  const started = Date.now();
  console.log(`run-tests: [${b.label}] ${b.files.length} files, ${b.jobs} at once: ${b.files.map((f) => relative(testDir, f)).join(' ')}`);
  const args = ['--test', `--test-concurrency=${b.jobs}`, '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...b.files];
  const env = { ...process.env, PATH: `${dirname(b.node)}:${process.env.PATH}`, ...(b.quick ? { BOOTSTRAP_TEST_TRIALS: 'quick' } : {}) };
  const child = spawn(b.node, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, env });
  prefixLines(child.stdout, process.stdout, `[${b.label}] `);
  prefixLines(child.stderr, process.stderr, `[${b.label}] `);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      let text = '';
      try {
        text = readFileSync(tap, 'utf8');
      } catch {
        // no TAP: counted as no test run
      }
      const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      resolve({ label: b.label, code: code ?? signal, tests: count('tests'), pass: count('pass'), fail: count('fail'), seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** Whole lines, each prefixed, so that batches running at once stay readable. */
function prefixLines(from, to, prefix) {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    if (lines.length > 0) to.write(lines.map((l) => prefix + l).join('\n') + '\n');
  });
  from.on('end', () => rest && to.write(prefix + rest + '\n'));
}

async function runPhases(phases) {
  const results = [];
  for (const streams of phases) {
    await Promise.all(streams.map(async (stream) => {
      for (const b of stream) results.push(await runBatch(b));
    }));
  }
  return results;
}

const opts = parseArgs(process.argv.slice(2));
const files = findTests(testDir)
  .filter((f) => opts.filters.length === 0 || opts.filters.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test');
  process.exit(1);
}
const phases = plan(files, opts);
if (opts.planOnly) {
  phases.forEach((streams, i) => streams.forEach((stream, j) => console.log(`phase ${i + 1}, stream ${j + 1}: ${stream.map((b) => `${b.label} (${b.files.length} files, ${b.jobs} at once)`).join(', then ')}`)));
  process.exit(0);
}
const started = Date.now();
const results = await runPhases(phases);
let failed = results.length === 0;
for (const r of results) {
  const bad = r.code !== 0 || r.fail > 0 || r.tests === 0;
  failed ||= bad;
  console.log(`run-tests: [${r.label}] ${r.pass} passed, ${r.fail} failed${r.tests === 0 ? ', NO TEST RAN' : ''}${r.code !== 0 ? ` (exit ${r.code})` : ''} in ${r.seconds.toFixed(0)} s`);
}
const sum = (k) => results.reduce((s, r) => s + r[k], 0);
console.log(`run-tests: ${results.length} runs in ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${sum('pass')} passed, ${sum('fail')} failed`);
process.exit(failed ? 1 : 0);
