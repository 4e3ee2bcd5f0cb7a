// Facts (built-in and explorer.d), NAME.if steps, the dry-run preview, reported changes,
// --detailed-exitcodes and runs.blame: real scripts in temp dirs, the real CLI.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, ended, isRunning, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';
import { httpStub, jsonReceiver } from '../helpers/servers.js';

const lastJournal = async (box: Sandbox) => json(await box.run(['runs.show', 'last', '--json']));
const step = (j: any, phase: string, name: string) => j.phases.find((p: any) => p.phase === phase).steps.find((s: any) => s.name === name);

describe('facts', () => {
  it(
    'built-in facts are present and typed, in facts.json (0600), server.facts and the journal',
    withBox(iniWith(), async (box) => {
      const r = await box.run(['server.facts', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = json(r);
      const f = out.facts;
      assert.equal(f.hostname, hostname());
      assert.equal(f.cpus, availableParallelism());
      assert.equal(typeof f.memory_mb, 'number');
      assert.ok(f.memory_mb > 0);
      assert.equal(f.boot_id, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      const osId = /^ID=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))![1]!.replace(/"/g, '');
      assert.equal(f['os.id'], osId);
      assert.equal(typeof f.kernel, 'string');
      assert.equal(typeof f.arch, 'string');
      assert.ok(Array.isArray(f.addresses));
      assert.ok(!f.addresses.includes('127.0.0.1'), 'loopback is not listed');
      // systemd-detect-virt's own answer (it exits 1 with `none` on bare metal); absent without it.
      const virt = spawnSync('systemd-detect-virt', [], { encoding: 'utf8' });
      assert.equal(f.virtualization, virt.error ? undefined : virt.stdout.trim());
      assert.equal(out.collected_now, true, 'none were stored: collected now');
      const file = join(box.stateDir, 'facts.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).facts, f);
      // Named facts, one value a line; an unknown name is refused with a suggestion.
      const two = await box.run(['server.facts', 'os.id', 'cpus']);
      assert.equal(two.stdout, `${osId}\n${availableParallelism()}\n`);
      const bad = await box.run(['server.facts', 'cpu']);
      assert.equal(bad.code, 65);
      assert.match(bad.stderr, /no fact 'cpu'.*did you mean cpus/);
      // A run carries them in its journal, and gives steps BOOTSTRAP_FACT_*.
      script(join(box.phasesDir, 'configure.d', '10-env'), 'echo "cpus=$BOOTSTRAP_FACT_CPUS os=$BOOTSTRAP_FACT_OS_ID json=$BOOTSTRAP_FACTS_JSON"');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const j = await lastJournal(box);
      assert.equal(j.facts.cpus, availableParallelism());
      assert.match(step(j, 'configure', '10-env').output_tail, new RegExp(`cpus=${availableParallelism()} os=${osId} json=${file}`));
    }),
  );

  it(
    'explorers: the fact is named after the file (NN- dropped), JSON kept as JSON, text trimmed; steps get them',
    withBox(iniWith(), async (box, log) => {
      const ex = join(box.phasesDir, 'explorer.d');
      script(join(ex, '10-disks'), `echo '{"sda": {"size_gb": 100}, "sdb": {"size_gb": 2}}'`);
      script(join(ex, 'role'), 'printf "  web frontend \\n\\n"');
      script(join(ex, '20-ports'), `echo '[80, 443]'`);
      script(join(ex, 'not-json'), `echo '{broken'`);
      script(join(ex, 'sees-builtins'), 'echo "$BOOTSTRAP_FACT_CPUS $BOOTSTRAP_PHASE $0"');
      script(join(box.phasesDir, 'configure.d', '10-use'), `echo "role=$BOOTSTRAP_FACT_ROLE disks=\${BOOTSTRAP_FACT_DISKS-unset}" >> "$LOG"; node -e 'const f = require(process.env.BOOTSTRAP_FACTS_JSON).facts; process.stdout.write(String(f.disks.sda.size_gb))' >> "$LOG"`);
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      const facts = JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8')).facts;
      assert.deepEqual(facts.disks, { sda: { size_gb: 100 }, sdb: { size_gb: 2 } });
      assert.deepEqual(facts.ports, [80, 443]);
      assert.equal(facts.role, 'web frontend');
      assert.equal(facts['not-json'], '{broken');
      assert.equal(facts['sees-builtins'], `${availableParallelism()} explorer ${join(ex, 'sees-builtins')}`);
      // Scalars only in the environment: an object fact is read from BOOTSTRAP_FACTS_JSON.
      assert.deepEqual(readLines(log), ['role=web frontend disks=unset', '100']);
      const j = await lastJournal(box);
      assert.equal(j.explorers.length, 5);
      assert.deepEqual(j.facts.ports, [80, 443]);
      assert.match((await box.run(['phases.list'])).stdout, /explorer\.d: not-json, role, sees-builtins, 10-disks, 20-ports/);
    }),
  );

  it(
    'a fact too large for the environment (a 140,000-byte package list; facts past 256 KiB together) stays in facts.json, is not exported, with a warning; steps run',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'explorer.d', '10-packages'), 'yes libfoo1-1.2.3 | head -n 10000');
      for (let i = 0; i < 9; i++) script(join(box.phasesDir, 'explorer.d', `2${i}-blob${i}`), `head -c 31000 /dev/zero | tr '\\0' b`);
      script(join(box.phasesDir, 'configure.d', '10-env'), 'echo "packages=${#BOOTSTRAP_FACT_PACKAGES} blobs=$(env | grep -c ^BOOTSTRAP_FACT_BLOB) os=${BOOTSTRAP_FACT_OS_ID:+set}" >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(readLines(log), ['packages=0 blobs=8 os=set'], 'the package list and the ninth blob are left out; the rest is there');
      assert.match(r.stderr, /the fact 'packages' is not exported as BOOTSTRAP_FACT_PACKAGES \(140023 bytes; more than the 32768 bytes one fact may take in steps' environment\): steps read it from \$BOOTSTRAP_FACTS_JSON/);
      assert.match(r.stderr, /the fact 'blob8' is not exported as BOOTSTRAP_FACT_BLOB8 \(\d+ bytes; the facts before it took \d+ of the 262144 bytes all facts may take/);
      const stored = JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8'));
      assert.equal(stored.facts.packages.length, 139999);
      assert.equal(stored.facts.blob8.length, 31000);
    }),
  );

  it(
    'an environment too large to start a program fails the run (1) with why, never a bare E2BIG (70)',
    withBox(iniWith(), async (box, log) => {
      // The agent's own environment, near the limit a program may start with; what a run adds goes over it.
      const stack = /^Max stack size\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      const limit = stack ? Math.max(128 * 1024, Math.floor(Number(stack[1]) / 4)) : 2 * 1024 * 1024;
      const big: Record<string, string> = {};
      for (let i = 0, left = limit - 20 * 1024; left > 0; i++, left -= 100 * 1024) big[`BIG_${i}`] = 'x'.repeat(Math.min(left, 100 * 1024) - 16);
      script(join(box.phasesDir, 'explorer.d', 'blob'), 'head -c 30000 /dev/zero | tr "\\0" b');
      script(join(box.phasesDir, 'configure.d', '10-step'), 'echo ran >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log, ...big } });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(json(r).failure.message, /the environment takes \d+ bytes, more than the \d+ a program may start with \(largest: BIG_/);
      assert.deepEqual(readLines(log), []);
    }),
  );

  it(
    'a failing explorer fails the run before any step (phase explorer), with error.d; server.facts --refresh says so too',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'explorer.d', 'ok'), 'echo fine');
      script(join(box.phasesDir, 'explorer.d', 'broken'), 'echo "cannot read /sys/x" >&2; exit 3');
      script(join(box.phasesDir, 'pre-configure.d', '10-first'), 'echo ran >> "$LOG"');
      script(join(box.phasesDir, 'error.d', '10-report'), 'echo "error.d $BOOTSTRAP_FAILED_PHASE/$BOOTSTRAP_FAILED_STEP $BOOTSTRAP_FAILURE $BOOTSTRAP_FAILED_EXIT_CODE ok=$BOOTSTRAP_FACT_OK" >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1);
      const out = json(r);
      assert.deepEqual(out.failure, { phase: 'explorer', step: 'broken', kind: 'exit', exit_code: 3, message: 'exit 3' });
      assert.deepEqual(readLines(log), ['error.d explorer/broken exit 3 ok=fine'], 'no step ran; error.d did, with the facts that could be read');
      assert.ok(out.phases.every((p: any) => p.status === 'not run' || p.status === 'missing'));
      const j = await lastJournal(box);
      assert.match(j.explorers.find((e: any) => e.name === 'broken').output_tail, /cannot read \/sys\/x/);
      const stored = JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8'));
      assert.deepEqual(stored.failed, ['broken']);
      assert.equal(stored.facts.ok, 'fine');
      const refresh = await box.run(['server.facts', '--refresh']);
      assert.equal(refresh.code, 1);
      assert.match(refresh.stderr, /explorer\/broken: exit 3/);
      assert.equal(JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')).provisioned_at, null);
    }),
  );

  it(
    'an explorer is bounded by script_timeout (kind timeout); explorers run in parallel',
    withBox(iniWith({ script_timeout: 30, kill_grace: 1 }), async (box, log) => {
      const ex = join(box.phasesDir, 'explorer.d');
      // Ten explorers, each waiting (5 s at most) until all ten have started: run in parallel,
      // all have started before any ends; run one after the other, the first ends alone. (Each
      // sleeping 0.6 s under a 1 s script_timeout: on a loaded machine ten starts took longer
      // than 0.6 s, and an explorer longer than 1 s.)
      const barrier = 'i=0; while [ "$(grep -c "^start" "$LOG")" -lt 10 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done';
      for (let i = 0; i < 10; i++) script(join(ex, `p${i}`), `echo "start $(date +%s%N)" >> "$LOG"; ${barrier}; echo "end $(date +%s%N)" >> "$LOG"; echo ${i}`);
      let r = await box.run(['server.facts', '--refresh', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      const times = (kind: string) => readLines(log).filter((l) => l.startsWith(kind)).map((l) => BigInt(l.split(' ')[1]!));
      const lastStart = times('start').reduce((a, b) => (a > b ? a : b));
      const firstEnd = times('end').reduce((a, b) => (a < b ? a : b));
      assert.equal(times('start').length, 10);
      assert.ok(lastStart < firstEnd, 'every explorer started before the first one ended');
      assert.equal(json(r).facts.p7, '7');
      // Now the bound: 3 s (ten quick explorers beside it stay well within it on a loaded machine).
      writeFileSync(box.config, iniWith({ script_timeout: 3, kill_grace: 1 }));
      for (let i = 0; i < 10; i++) script(join(ex, `p${i}`), `echo ${i}`);
      script(join(ex, 'hangs'), 'sleep 60');
      const t0 = Date.now();
      r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1);
      assert.equal(json(r).failure.kind, 'timeout');
      assert.equal(json(r).failure.step, 'hangs');
      assert.ok(Date.now() - t0 < 15_000);
    }),
  );

  it(
    'server.facts --refresh takes no run lock: it works while a run holds it',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'explorer.d', 'role'), 'echo db');
      // The step holds the run (and its lock) until the test is done: a fixed sleep of 3 s could
      // end before the two commands below (two Node starts) had run on a loaded machine.
      const started = join(box.dir, 'started');
      script(join(box.phasesDir, 'configure.d', '10-slow'), `: > "${started}"; sleep 120`);
      const run = box.start(['server.provision']);
      // Listened for from the start: a run that had ended already never emits 'close' again, and
      // the test's await then left the event loop empty (every later test of the file cancelled).
      const closed = new Promise((r) => run.once('close', r));
      try {
        await waitUntil(() => existsSync(started));
        const r = await box.run(['server.facts', '--refresh', 'role']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'db\n');
        assert.equal((await box.run(['server.provision'])).code, 75, 'the run lock is held');
      } finally {
        run.kill('SIGTERM');
        await closed;
      }
    }),
  );

  it(
    'explorers follow the step rules: an untrusted one refuses the run (77), two giving one fact are refused (78)',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'explorer.d', 'open'), 'echo x', 0o777);
      let r = await box.run(['server.provision']);
      assert.equal(r.code, 77);
      assert.match(r.stderr, /explorer\.d\/open: writable by others/);
      assert.equal((await box.run(['server.facts', '--refresh'])).code, 77);
      script(join(box.phasesDir, 'explorer.d', 'open'), 'echo x', 0o755);
      script(join(box.phasesDir, 'explorer.d', '10-role'), 'echo a');
      script(join(box.phasesDir, 'explorer.d', '20-role'), 'echo b');
      r = await box.run(['server.provision']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /20-role: gives the fact 'role', as 10-role does/);
    }),
  );
});

describe('.if steps', () => {
  it(
    'exit 0 runs the step, 1 skips it (reason: its first line; its check does not run), 2 fails it (kind condition) with backout and error.d',
    withBox(iniWith({ backout: 'failed' }), async (box, log) => {
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '10-yes.if'), 'exit 0');
      script(join(dir, '10-yes'), 'echo 10-yes >> "$LOG"');
      script(join(dir, '20-no.if'), 'echo "not on this hardware"; echo second line; exit 1');
      script(join(dir, '20-no'), 'echo 20-no >> "$LOG"');
      script(join(dir, '20-no.check'), 'echo 20-no.check >> "$LOG"');
      script(join(dir, '30-env.if'), '[ "$BOOTSTRAP_PHASE/$BOOTSTRAP_ACTION/$0" = "configure/provision/$PWD/30-env.if" ] || { echo "wrong env $BOOTSTRAP_PHASE $0"; exit 1; }');
      script(join(dir, '30-env'), 'echo 30-env >> "$LOG"');
      script(join(dir, '40-broken.if'), 'echo "cannot tell" >&2; exit 2');
      script(join(dir, '40-broken'), 'echo 40-broken >> "$LOG"');
      script(join(dir, '40-broken.backout'), 'echo "40-broken.backout $BOOTSTRAP_FAILURE" >> "$LOG"');
      script(join(dir, '50-later'), 'echo 50-later >> "$LOG"');
      script(join(box.phasesDir, 'error.d', '10-e'), 'echo "error.d $BOOTSTRAP_FAILED_STEP $BOOTSTRAP_FAILURE" >> "$LOG"');
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(readLines(log), ['10-yes', '30-env', '40-broken.backout condition', 'error.d 40-broken condition']);
      const out = json(r);
      assert.equal(out.failure.kind, 'condition');
      assert.equal(out.failure.step, '40-broken');
      assert.match(out.failure.message, /condition 40-broken\.if: exit 2/);
      assert.deepEqual(out.counts, { changed: 0, unchanged: 2, skipped: 1, failed: 1 });
      const j = await lastJournal(box);
      const skipped = step(j, 'configure', '20-no');
      assert.equal(skipped.status, 'skipped');
      assert.equal(skipped.message, 'not on this hardware');
      assert.equal(skipped.condition.exit_code, 1);
      assert.equal(skipped.check, null);
      assert.match(step(j, 'configure', '40-broken').condition.output_tail, /cannot tell/);
      const show = await box.run(['runs.show']);
      assert.match(show.stdout, /skip 20-no {2}not on this hardware/);
      assert.match((await box.run(['phases.list'])).stdout, /10-yes {2}\+if/);
    }),
  );

  it(
    'a .if follows the trust rules of steps: writable by others, the run refuses to start (77) and nothing runs',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-x'), 'echo ran >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '10-x.if'), 'exit 0', 0o777);
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 77);
      assert.match(r.stderr, /10-x\.if: writable by others/);
      assert.deepEqual(readLines(log), []);
      assert.equal((await box.run(['server.provision', '--dry-run'])).code, 77, 'the dry run runs no untrusted .if either');
    }),
  );

  it(
    'a .if that hangs is killed at script_timeout (kind timeout)',
    withBox(iniWith({ script_timeout: 1, kill_grace: 1 }), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-x.if'), 'sleep 60');
      script(join(box.phasesDir, 'configure.d', '10-x'), 'echo ran >> "$LOG"');
      const t0 = Date.now();
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 1);
      assert.equal(json(r).failure.kind, 'timeout');
      assert.equal(json(r).failure.step, '10-x');
      assert.deepEqual(readLines(log), []);
      assert.ok(Date.now() - t0 < 15_000);
    }),
  );

  it(
    'retries run the .if again with the step',
    withBox(iniWith({ retries: 1, retry_delay: 0 }), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-x.if'), 'echo if >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '10-x'), 'echo step >> "$LOG"; [ -e "$LOG.once" ] || { touch "$LOG.once"; exit 1; }');
      const r = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readLines(log), ['if', 'step', 'if', 'step']);
    }),
  );

  it(
    '--dry-run runs the .if files and previews what the run then does, step by step',
    withBox(iniWith(), async (box, log) => {
      const dir = join(box.phasesDir, 'configure.d');
      script(join(box.phasesDir, 'explorer.d', 'role'), 'echo web');
      script(join(dir, '10-web.if'), '[ "$BOOTSTRAP_FACT_ROLE" = web ] || { echo "role is $BOOTSTRAP_FACT_ROLE"; exit 1; }');
      script(join(dir, '10-web'), 'echo 10-web >> "$LOG"');
      script(join(dir, '20-db.if'), '[ "$BOOTSTRAP_FACT_ROLE" = db ] || { echo "role is $BOOTSTRAP_FACT_ROLE, not db"; exit 1; }');
      script(join(dir, '20-db'), 'echo 20-db >> "$LOG"');
      script(join(dir, '30-always'), 'echo 30-always >> "$LOG"');
      script(join(box.phasesDir, 'post-configure.d', '10-upgrade-only.if'), '[ "$BOOTSTRAP_ACTION" = upgrade ] || { echo "only for upgrades"; exit 1; }');
      script(join(box.phasesDir, 'post-configure.d', '10-upgrade-only'), 'echo 10-upgrade-only >> "$LOG"');
      const dry = await box.run(['server.provision', '--dry-run', '--json'], { env: { LOG: log } });
      assert.equal(dry.code, 0, dry.stderr);
      assert.deepEqual(readLines(log), [], 'a dry run runs no step');
      assert.equal(existsSync(join(box.stateDir, 'facts.json')), false, 'and writes no facts.json');
      const preview = json(dry).preview.map((p: any) => `${p.verdict} ${p.phase}/${p.step}${p.reason ? `: ${p.reason}` : ''}`);
      assert.deepEqual(preview, ['run configure/10-web', 'skip configure/20-db: role is web, not db', 'run configure/30-always', 'skip post-configure/10-upgrade-only: only for upgrades']);
      const human = await box.run(['server.provision', '--dry-run'], { env: { LOG: log } });
      assert.match(human.stdout, /skip configure\/20-db: role is web, not db/);
      // The real run does what the preview said.
      const r = await box.run(['server.provision', '--json'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      const j = await lastJournal(box);
      const done = j.phases.flatMap((p: any) => p.steps.map((s: any) => `${s.status === 'skipped' ? 'skip' : 'run'} ${p.phase}/${s.name}${s.status === 'skipped' ? `: ${s.message}` : ''}`));
      assert.deepEqual(done, preview);
      assert.deepEqual(readLines(log), ['10-web', '30-always']);
      // A .if that would fail makes the dry run fail, naming it.
      script(join(dir, '30-always.if'), 'exit 5');
      const bad = await box.run(['server.provision', '--dry-run']);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /the run would fail at configure\/30-always: condition 30-always\.if: exit 5/);
    }),
  );
});

describe('dry-run leftovers', () => {
  for (const next of [['server.provision', '--dry-run'], ['server.provision'], ['server.facts', '--refresh']]) {
    it(
      `a SIGKILLed dry run leaves nothing for ever: \`${next.join(' ')}\` removes its snapshot (secrets) and ends its .if, launcher and relay`,
      withBox(iniWith(), async (box, log) => {
        const pids = join(box.dir, 'pids');
        const slow = join(box.dir, 'slow');
        writeFileSync(slow, '');
        script(join(box.phasesDir, 'configure.d', '10-step'), 'echo ran >> "$LOG"');
        // Records where its snapshot is and what runs, leaves a setsid daemon, and hangs while `slow` exists.
        script(join(box.phasesDir, 'configure.d', '10-step.if'), `echo "$BOOTSTRAP_CONFIG_JSON" > "${pids}.snapshot"; setsid sleep 300 & echo $! >> "${pids}"; echo $$ >> "${pids}"; echo $PPID >> "${pids}"; while [ -e "${slow}" ]; do sleep 0.1; done`);
        assert.equal((await box.run(['product.set', 'haproxy.stats_password=s3cret-Value'])).code, 0);
        const agent = box.start(['server.provision', '--dry-run'], { env: { LOG: log } });
        const started: number[] = [];
        try {
          for (let i = 0; i < 400 && readLines(pids).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
          assert.equal(readLines(pids).length, 3, 'the .if started');
          started.push(...readLines(pids).map(Number));
          const snapshot = readFileSync(`${pids}.snapshot`, 'utf8').trim();
          assert.match(readFileSync(snapshot, 'utf8'), /s3cret-Value/, 'the dry run snapshot holds the secret');
          const exited = new Promise((r) => agent.once('exit', r));
          agent.kill('SIGKILL');
          await exited;
          assert.ok(existsSync(snapshot) && started.every(isRunning), 'left behind by the killed agent');
          rmSync(slow);
          const r = await box.run(next, { env: { LOG: log } });
          assert.ok(r.code === 0 || next[0] === 'server.facts', r.stderr);
          assert.match(r.stderr, /removed what 1 dry run\(s\), verify\(s\) or fact collection\(s\) left when their agent died .*, and ended \d+ process\(es\) they left running/);
          assert.ok(!existsSync(snapshot), 'the snapshot is gone');
          assert.ok(!existsSync(dirname(snapshot)), 'and its dir');
          for (const pid of started) assert.ok(await ended(pid, 5000), `pid ${pid} (the .if, its daemon, the launcher) was ended`);
          // Once only: the next command finds nothing.
          assert.doesNotMatch((await box.run(['server.provision', '--dry-run'])).stderr, /removed what/);
        } finally {
          agent.kill('SIGKILL');
          for (const pid of started) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
          const snapshot = existsSync(`${pids}.snapshot`) ? readFileSync(`${pids}.snapshot`, 'utf8').trim() : '';
          if (snapshot.includes('bootstrap-scratch-')) rmSync(dirname(snapshot), { recursive: true, force: true });
        }
      }),
    );
  }
});

describe('reported changes', () => {
  it(
    'steps, checks and backouts report changes: journal, runs.show, summary line, callback (valid against the JSON Schema, facts included)',
    async () => {
      const stub = await jsonReceiver();
      const box = sandbox(iniWith({ backout: 'all' }, `\n[callback]\nurl = ${stub.url}/cb\n`));
      try {
        const dir = join(box.phasesDir, 'configure.d');
        script(join(box.phasesDir, 'explorer.d', 'rack'), `echo '{"row": 4}'`);
        script(join(dir, '10-two'), 'echo "rewrote /etc/a" >> "$BOOTSTRAP_CHANGES"; echo "rewrote /etc/b" >> "$BOOTSTRAP_CHANGES"');
        script(join(dir, '10-two.check'), 'echo "restarted a" >> "$BOOTSTRAP_CHANGES"');
        script(join(dir, '20-none'), 'echo "nothing to do"');
        script(join(dir, '30-skip.if'), 'echo no; exit 1');
        script(join(dir, '30-skip'), 'echo "never" >> "$BOOTSTRAP_CHANGES"');
        let r = await box.run(['server.provision', '--json']);
        assert.equal(r.code, 0, r.stderr);
        const out = json(r);
        assert.deepEqual(out.counts, { changed: 1, unchanged: 1, skipped: 1, failed: 0 });
        assert.deepEqual(out.changes, [{ phase: 'configure', step: '10-two', changes: ['rewrote /etc/a', 'rewrote /etc/b', 'restarted a'] }]);
        const j = await lastJournal(box);
        assert.deepEqual(step(j, 'configure', '10-two').changes, ['rewrote /etc/a', 'rewrote /etc/b']);
        assert.deepEqual(step(j, 'configure', '10-two').check.changes, ['restarted a']);
        assert.deepEqual(step(j, 'configure', '20-none').changes, []);
        assert.match((await box.run(['runs.show'])).stdout, /\+ rewrote \/etc\/a\n.*\+ rewrote \/etc\/b/);
        r = await box.run(['server.refresh']);
        assert.match(r.stderr, /success \(3 steps: 1 changed, 1 unchanged, 1 skipped, 0 failed;/);
        assert.match(r.stdout, /changes:\n {2}configure\/10-two: rewrote \/etc\/a/);
        // A failing run: the backouts' changes are recorded too.
        script(join(dir, '10-two.backout'), 'echo "restored /etc/a" >> "$BOOTSTRAP_CHANGES"');
        script(join(dir, '40-fail'), 'exit 1');
        r = await box.run(['server.refresh', '--json']);
        assert.equal(r.code, 1);
        assert.deepEqual(json(r).changes.find((c: any) => c.step === '10-two.backout'), { phase: 'configure', step: '10-two.backout', changes: ['restored /etc/a'] });
        const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
        const bodies = stub.bodies.map((b) => b.body);
        assert.equal(bodies.length, 3);
        for (const body of bodies) assert.deepEqual(validate(schema, body), []);
        assert.deepEqual(bodies[0].facts.rack, { row: 4 });
        assert.equal(bodies[0].facts.cpus, availableParallelism());
        assert.deepEqual(bodies[0].counts, { changed: 1, unchanged: 1, skipped: 1, failed: 0 });
        assert.deepEqual(validate(schema, { ...bodies[0], counts: { changed: 'x' } }).length > 0, true, 'the checker itself can fail');
        assert.deepEqual(readdirSync(join(box.stateDir, 'runs')).filter((n) => n.endsWith('.changes')), [], 'no changes dir outlives its run');
        if (existsSync('/dev/shm')) assert.deepEqual(readdirSync('/dev/shm').filter((n) => n.startsWith(`bootstrap-${bodies[0].id}-`)), [], 'nor in /dev/shm');
      } finally {
        box.cleanup();
        await stub.close();
      }
    },
  );

  it(
    '--detailed-exitcodes: 0 when nothing was reported, 2 with changes, 1 on failure; without it, 0',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-x'), '[ -e "$FLAG" ] && echo "changed it" >> "$BOOTSTRAP_CHANGES"; [ -e "$FAIL" ] && exit 1; true');
      const flag = join(box.dir, 'flag');
      const fail = join(box.dir, 'fail');
      const env = { FLAG: flag, FAIL: fail };
      assert.equal((await box.run(['server.provision', '--detailed-exitcodes'], { env })).code, 0);
      writeFileSync(flag, '');
      assert.equal((await box.run(['server.refresh', '--detailed-exitcodes'], { env })).code, 2);
      assert.equal((await box.run(['server.refresh'], { env })).code, 0);
      assert.equal((await box.run(['server.mode', 'active', '--detailed-exitcodes'], { env })).code, 2);
      assert.equal((await box.run(['product.upgrade', 'haproxy', '--to', '2.8', '--detailed-exitcodes'], { env })).code, 2);
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=10', '--apply', '--detailed-exitcodes'], { env })).code, 2);
      writeFileSync(fail, '');
      assert.equal((await box.run(['server.refresh', '--detailed-exitcodes'], { env })).code, 1);
    }),
  );

  it('the example: a second server.refresh reports no change (exit 0); after product.set haproxy.maxconn it reports the haproxy config (exit 2)', async () => {
    const box = sandbox();
    try {
      cpSync(join(root, 'phases'), box.phasesDir, { recursive: true });
      const env = { BOOTSTRAP_ROOT: join(box.dir, 'root') };
      mkdirSync(env.BOOTSTRAP_ROOT);
      let r = await box.run(['server.provision', '--detailed-exitcodes', '--json'], { env });
      assert.equal(r.code, 2, r.stderr);
      assert.ok(json(r).counts.changed >= 3);
      r = await box.run(['server.refresh', '--detailed-exitcodes', '--json'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(json(r).changes, []);
      assert.equal(json(r).counts.changed, 0);
      r = await box.run(['product.set', 'haproxy.maxconn=2000', '--apply', '--detailed-exitcodes', '--json'], { env });
      assert.equal(r.code, 2, r.stderr);
      const run = json(r); // one document: the run's, with the settings under `settings`
      assert.deepEqual(run.settings.changed, [{ product: 'haproxy', setting: 'maxconn', value: 2000, previous: 4096 }]);
      assert.deepEqual(run.changes, [{ phase: 'configure', step: '20-haproxy', changes: [`rewrote ${join(env.BOOTSTRAP_ROOT, 'etc/haproxy/haproxy.cfg')}`] }]);
      assert.match(readFileSync(join(env.BOOTSTRAP_ROOT, 'etc/haproxy/haproxy.cfg'), 'utf8'), /maxconn 2000\n {4}nbthread \d+/);
      // The Debian-only step follows the os.id fact.
      const debian = /^ID=debian$/m.test(readFileSync('/etc/os-release', 'utf8'));
      const apt = step(await lastJournal(box), 'configure', '40-apt-periodic');
      assert.equal(apt.status, debian ? 'success' : 'skipped');
    } finally {
      box.cleanup();
    }
  });
});

describe('runs.blame', () => {
  it(
    "a run's files by duration with their share; --runs N: median and worst over the last N",
    withBox(iniWith(), async (box) => {
      const dir = join(box.phasesDir, 'configure.d');
      script(join(dir, '10-short'), 'sleep 0.1');
      script(join(dir, '20-long'), 'sleep 0.6');
      script(join(dir, '20-long.if'), 'true');
      script(join(dir, '30-mid'), 'sleep 0.3');
      script(join(box.phasesDir, 'explorer.d', 'x'), 'echo 1');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const one = json(await box.run(['runs.blame', '--json'])).run;
      const names = one.entries.filter((e: any) => e.role !== 'agent').map((e: any) => e.name);
      // Sorted by duration; the three sleeping steps in their order. The others (`true`, `echo 1`)
      // cost a process start each, which on a loaded machine can outlast 10-short's 0.1 s.
      const durations = one.entries.map((e: any) => e.duration_ms);
      assert.deepEqual(durations, [...durations].sort((a, b) => b - a), 'longest first');
      assert.deepEqual(names.filter((n: string) => ['10-short', '20-long', '30-mid'].includes(n)), ['20-long', '30-mid', '10-short']);
      assert.equal(names[0], '20-long');
      assert.ok(names.includes('20-long.if') && names.includes('x'), 'conditions and explorers are listed');
      // Each share is the file's time over the run's (both as the journal records them); its
      // size against the run's fixed cost depends on the machine's speed, so only the ratio is checked.
      for (const e of one.entries) assert.ok(Math.abs(e.share - Math.round((e.duration_ms / one.duration_ms) * 1000) / 1000) < 1e-9 && e.share <= 1, `share ${JSON.stringify(e)} of ${one.duration_ms} ms`);
      assert.ok(one.entries[0].duration_ms >= 550, `20-long took ${one.entries[0].duration_ms} ms`);
      // The same rows, in the same order, for a human (an agent row such as "(explorers)" may come
      // first: ten process starts can outlast 20-long on a loaded machine).
      const human = (await box.run(['runs.blame'])).stdout;
      assert.match(human, /^run \S+: provision success[^\n]*\n/);
      const rows = [...human.matchAll(/^ +\d+ ms +[\d.]+% {2}(.+)$/gm)].map((m) => m[1]);
      assert.deepEqual(rows, one.entries.map((e: any) => (e.role === 'agent' ? e.name : `${e.phase}/${e.name}`)));
      assert.ok(rows.indexOf('configure/20-long') < rows.indexOf('configure/30-mid') && rows.indexOf('configure/30-mid') < rows.indexOf('configure/10-short'));
      for (let i = 0; i < 3; i++) assert.equal((await box.run(['server.refresh'])).code, 0);
      const many = json(await box.run(['runs.blame', '--runs', '3', '--json']));
      assert.equal(many.runs, 3);
      assert.equal(many.steps.filter((x: any) => x.role !== 'agent')[0].name, '20-long');
      const long = many.steps.find((x: any) => x.name === '20-long');
      assert.equal(long.runs, 3);
      assert.ok(long.median_ms >= 550 && long.worst_ms >= long.median_ms);
      assert.equal(json(await box.run(['runs.blame', '--runs', '50', '--json'])).runs, 4);
      assert.equal((await box.run(['runs.blame', '--runs', '0'])).code, 64);
      assert.equal((await box.run(['runs.blame', 'nope'])).code, 65);
    }),
  );

  it(
    'the lock wait, explorers, environment.d, the health gate and the callback have rows of their own, for one run and over N; a journal without timings still blames',
    async () => {
      const receiver = await slowReceiver(300);
      const box = sandbox(iniWith({ health_gate: 'true', health_timeout: 30 }, `\n[heartbeat.slow]\ntype = exec\ncommand = sleep 0.4\n\n[callback]\nurl = ${receiver.url}/hook\ntimeout = 10\n`));
      try {
        const gate = join(box.dir, 'gate');
        script(join(box.phasesDir, 'environment.d', '10-env'), 'sleep 0.2');
        script(join(box.phasesDir, 'explorer.d', 'x'), 'sleep 0.3; echo 1');
        // The first run holds the run lock until the test lets it go: the second waits for it.
        script(join(box.phasesDir, 'configure.d', '10-hold'), `while [ ! -e "${gate}" ] && [ -e "${box.dir}/hold" ]; do sleep 0.05; done`);
        writeFileSync(join(box.dir, 'hold'), '');
        const first = box.start(['server.provision', '-q']);
        await waitUntil(() => existsSync(join(box.stateDir, 'run.lock')) && readdirSync(join(box.stateDir, 'runs')).some((n) => n.endsWith('.json')));
        const second = box.start(['server.provision', '--wait=120']);
        const results = Promise.all([collect(first, 120_000), collect(second, 120_000)]);
        let said = '';
        second.stderr!.on('data', (d: Buffer | string) => (said += String(d)));
        await waitUntil(() => said.includes('waiting for the run lock'));
        await new Promise((r) => setTimeout(r, 600)); // the wait to be measured
        writeFileSync(gate, '');
        const [a, b] = await results;
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const one = json(await box.run(['runs.blame', '--json'])).run;
        const row = (name: string) => one.entries.find((e: any) => e.name === name);
        for (const name of ['(lock wait)', '(explorers)', '(environment.d)', '(health gate)', '(callback)']) {
          assert.ok(row(name), `${name} in ${JSON.stringify(one.entries)}`);
          assert.equal(row(name).role, 'agent');
          assert.equal(row(name).phase, 'agent');
        }
        assert.ok(row('(lock wait)').duration_ms >= 500, `lock wait ${row('(lock wait)').duration_ms} ms`);
        assert.ok(row('(explorers)').duration_ms >= 250, `explorers ${row('(explorers)').duration_ms} ms`);
        // environment.d is sourced for explorer.d and for configure (at least): twice 0.2 s.
        assert.ok(row('(environment.d)').duration_ms >= 350, `environment.d ${row('(environment.d)').duration_ms} ms`);
        assert.ok(row('(health gate)').duration_ms >= 350, `health gate ${row('(health gate)').duration_ms} ms`);
        assert.ok(row('(callback)').duration_ms >= 250, `callback ${row('(callback)').duration_ms} ms`);
        const human = (await box.run(['runs.blame'])).stdout;
        for (const name of ['(lock wait)', '(explorers)', '(environment.d)', '(health gate)', '(callback)']) assert.match(human, new RegExp(`^ +\\d+ ms +[\\d.]+% {2}${name.replace(/[().]/g, '\\$&')}$`, 'm'));
        const journal = json(await box.run(['runs.show', '--json']));
        assert.equal(journal.timings.callback_ms, row('(callback)').duration_ms, 'the journal was rewritten with the callback time');
        const many = json(await box.run(['runs.blame', '--runs', '2', '--json']));
        const stat = (name: string) => many.steps.find((x: any) => x.name === name);
        assert.equal(stat('(health gate)').runs, 2);
        assert.equal(stat('(explorers)').runs, 2);
        assert.ok(stat('(lock wait)').worst_ms >= 500 && stat('(lock wait)').worst_run === journal.id);
        assert.match((await box.run(['runs.blame', '--runs', '2'])).stdout, /^ +\d+ ms +\d+ ms +2 {2}\(health gate\)$/m);
        // A journal of an older agent (no timings): its files only, no error.
        const file = join(box.stateDir, 'runs', `${journal.id}.json`);
        const { timings: _, ...old } = JSON.parse(readFileSync(file, 'utf8'));
        writeFileSync(file, JSON.stringify(old));
        const before = json(await box.run(['runs.blame', '--json'])).run;
        assert.deepEqual(before.entries.filter((e: any) => e.role === 'agent'), []);
        assert.ok(before.entries.some((e: any) => e.name === '10-hold'));
        const stats = await box.run(['runs.blame', '--runs', '2', '--json']);
        assert.equal(stats.code, 0, stats.stderr);
        assert.equal(json(stats).steps.find((x: any) => x.name === '(health gate)').runs, 1);
      } finally {
        box.cleanup();
        await receiver.close();
      }
    },
  );
});

/** A callback receiver that answers 200 after `delayMs`. */
async function slowReceiver(delayMs: number) {
  return httpStub((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end(), delayMs));
  });
}

async function waitUntil(condition: () => boolean, withinMs = 60_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
