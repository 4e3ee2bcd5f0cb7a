// node_exporter textfile metrics ([metrics] textfile_dir), black-box through the CLI: each file is
// checked by a real parser (promtool check metrics, Debian's prometheus package) and by value
// against state.json, after a success, a failure, a refusal, a pause for a reboot, a disable, a
// checkup and a flush; the dir missing or not writable; and writers racing a reader.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asNobody, root, runCli, sandbox, type CliResult, type Sandbox } from '../helpers/cli.js';
import { iniWith, script } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';

const runFile = 'bootstrap.prom';
const beatFile = 'bootstrap_heartbeat.prom';
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
/** Every run here starts under umask 077: the files must still be 0644. */
const tightUmask = ['sh', '-c', 'umask 077; exec "$@"', 'sh'];
const beats = '[heartbeat.ok]\ntype = exec\ncommand = true\n\n[heartbeat.bad]\ntype = exec\ncommand = false\n';

interface Rig {
  box: Sandbox;
  prom: string;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  state(): any;
  /** The file, checked by promtool and parsed: `name{labels}` → value. */
  scrape(file?: string): Map<string, number>;
}

/** A sandbox whose [metrics] textfile_dir is `prom` (made 0755 unless `makeDir` is false), with two checks. */
async function withRig(fn: (r: Rig) => Promise<void>, options: { phases?: Record<string, string | number>; extra?: string; makeDir?: boolean } = {}): Promise<void> {
  const box = sandbox('');
  const prom = join(box.dir, 'prom');
  writeFileSync(box.config, iniWith(options.phases ?? {}, `\n${beats}\n[metrics]\ntextfile_dir = ${prom}\n${options.extra ?? ''}`));
  mkdirSync(box.phasesDir, { recursive: true });
  if (options.makeDir !== false) mkdirSync(prom, { mode: 0o755 });
  try {
    await fn({
      box,
      prom,
      run: (args, env = {}) => box.run(args, { env: { LOG: join(box.dir, 'steps.log'), ...env }, prefix: tightUmask }),
      state: () => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')),
      scrape: (file = runFile) => {
        const path = join(prom, file);
        assert.equal(statSync(path).mode & 0o777, 0o644, `${file} is 0644 whatever the umask`);
        const text = readFileSync(path, 'utf8');
        promtool(text);
        return parseProm(text);
      },
    });
  } finally {
    box.cleanup();
  }
}

/** `promtool check metrics`: parses and lints as Prometheus does; exit 0 and nothing said. */
function promtool(text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.error, undefined, 'promtool runs (apt-get install prometheus)');
  assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}\n${text}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint problem');
}

/**
 * A strict reading of the text format as bootstrap writes it: whole lines, HELP and TYPE once
 * per family and before its samples, samples of two fields (no timestamp). Throws on anything else.
 */
function parseProm(text: string): Map<string, number> {
  if (!text.endsWith('\n')) throw new Error(`not a whole file (no final line feed): ${JSON.stringify(text.slice(-80))}`);
  const samples = new Map<string, number>();
  const help = new Set<string>();
  const typed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const h = /^# HELP (bootstrap_\w+) \S.*$/.exec(line);
    const t = /^# TYPE (bootstrap_\w+) gauge$/.exec(line);
    const s = /^(bootstrap_\w+)((?:\{.*\})?) (-?[0-9.e+]+|NaN)$/.exec(line);
    if (h && !help.has(h[1]!)) help.add(h[1]!);
    else if (t && help.has(t[1]!) && !typed.has(t[1]!)) typed.add(t[1]!);
    else if (s && typed.has(s[1]!) && !samples.has(s[1]! + s[2]!)) samples.set(s[1]! + s[2]!, Number(s[3]));
    else throw new Error(`unexpected line ${JSON.stringify(line)} in:\n${text}`);
  }
  return samples;
}

const secs = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : 0);

/** What bootstrap.prom must say of state.json (the journal's and outbox's metrics aside). */
function fromState(s: any): Record<string, number> {
  const last = s.last_run;
  const success = s.last_success?.finished_at ?? (last?.status === 'success' ? last.finished_at : null);
  return {
    bootstrap_last_run_timestamp_seconds: secs(last?.finished_at),
    bootstrap_last_success_timestamp_seconds: secs(success),
    bootstrap_last_run_duration_seconds: last ? last.duration_ms / 1000 : 0,
    bootstrap_last_run_success: last?.status === 'success' ? 1 : 0,
    bootstrap_last_run_exit_code: last?.exit_code ?? 0,
    bootstrap_failed_runs_since_success: s.failed_runs_since_success ?? (last && last.status !== 'success' ? 1 : 0),
    bootstrap_drift_steps: s.last_verify?.drift ?? 0,
    bootstrap_disabled: s.disabled ? 1 : 0,
    bootstrap_waiting_for_reboot: s.paused_run ? 1 : 0,
  };
}

function assertFromState(m: Map<string, number>, state: any): void {
  for (const [name, value] of Object.entries(fromState(state))) assert.equal(m.get(name), value, name);
}

function steps(m: Map<string, number>): Record<string, number | undefined> {
  return Object.fromEntries(['changed', 'unchanged', 'skipped', 'failed'].map((r) => [r, m.get(`bootstrap_last_run_steps{result="${r}"}`)]));
}

/** configure.d: 10-change (reports a change; fails while $LOG.fail exists), 20-same, 30-never (skipped by its .if). */
function tree(r: Rig): void {
  const dir = join(r.box.phasesDir, 'configure.d');
  script(join(dir, '10-change'), '[ ! -e "$LOG.fail" ] || exit 3\necho "set x" > "$BOOTSTRAP_CHANGES"');
  script(join(dir, '20-same'), 'true');
  script(join(dir, '30-never'), 'true');
  script(join(dir, '30-never.if'), 'exit 1');
}

describe('metrics: node_exporter textfiles', () => {
  it('after a success then a failure: promtool accepts bootstrap.prom (0644 under umask 077), values from state.json and the journal, the last success kept', () =>
    withRig(async (r) => {
      tree(r);
      const ok = await r.run(['server.provision']);
      assert.equal(ok.code, 0, ok.stderr);
      const first = r.state().last_run;
      let m = r.scrape();
      assert.equal(m.get('bootstrap_last_run_success'), 1);
      assert.equal(m.get('bootstrap_last_run_timestamp_seconds'), secs(first.finished_at));
      assert.equal(m.get('bootstrap_last_success_timestamp_seconds'), secs(first.finished_at));
      assert.equal(m.get('bootstrap_failed_runs_since_success'), 0);
      assert.deepEqual(steps(m), { changed: 1, unchanged: 1, skipped: 1, failed: 0 });
      assert.equal(m.get(`bootstrap_info{mode="standby",server="test-01",version="${version}"}`), 1);
      assert.equal(m.get('bootstrap_callbacks_pending'), 0);
      assert.equal(m.get('bootstrap_callbacks_dead'), 0);
      assert.equal(m.get('bootstrap_waiting_for_reboot'), 0);
      assert.equal(m.get('bootstrap_disabled'), 0);
      assertFromState(m, r.state());

      writeFileSync(join(r.box.dir, 'steps.log.fail'), '');
      const failed = await r.run(['server.refresh']);
      assert.equal(failed.code, 1, failed.stderr);
      const s = r.state();
      assert.equal(s.last_run.status, 'failure');
      m = r.scrape();
      assert.equal(m.get('bootstrap_last_run_success'), 0);
      assert.equal(m.get('bootstrap_last_run_exit_code'), 1);
      assert.equal(m.get('bootstrap_last_run_timestamp_seconds'), secs(s.last_run.finished_at));
      assert.ok(m.get('bootstrap_last_run_timestamp_seconds')! > secs(first.finished_at));
      assert.equal(m.get('bootstrap_failed_runs_since_success'), s.failed_runs_since_success ?? 1);
      // state.json's last_success (the run recorder's) is the first run's, and the metric says so.
      assert.equal(m.get('bootstrap_last_success_timestamp_seconds'), s.last_success ? secs(first.finished_at) : 0);
      assert.deepEqual(steps(m), { changed: 0, unchanged: 0, skipped: 0, failed: 1 });
      assertFromState(m, s);

      const mode = await r.run(['server.mode', 'active', '--no-apply']);
      assert.equal(mode.code, 0, mode.stderr);
      m = r.scrape();
      assert.equal(m.get(`bootstrap_info{mode="active",server="test-01",version="${version}"}`), 1, 'a committed mode shows at once');
      assert.equal(m.has(`bootstrap_info{mode="standby",server="test-01",version="${version}"}`), false);
    }));

  it('state.json fields other commands own (last_success, failed_runs_since_success, last_verify, disabled, set by hand): callback.flush rewrites bootstrap.prom with them', () =>
    withRig(async (r) => {
      tree(r);
      assert.equal((await r.run(['server.provision'])).code, 0);
      const s = r.state();
      s.last_run = { ...s.last_run, status: 'failure', exit_code: 1, finished_at: '2026-11-21T10:15:00.500Z' };
      s.last_success = { id: '20261120T090000Z-abcdef', action: 'refresh', finished_at: '2026-11-20T09:00:01.250Z' };
      s.failed_runs_since_success = 3;
      s.last_verify = { id: '20261121T110000Z-abcdef', finished_at: '2026-11-21T11:00:02.000Z', status: 'drift', drift: 2, ok: 5, no_check: 1, skipped: 0 };
      s.disabled = { since: '2026-11-21T12:00:00.000Z', by: 'alice (uid 1000)', reason: 'kernel "maintenance"\nticket 42' };
      writeFileSync(join(r.box.stateDir, 'state.json'), JSON.stringify(s), { mode: 0o600 });
      const flush = await r.run(['callback.flush']);
      assert.equal(flush.code, 0, flush.stderr);
      const m = r.scrape();
      assert.equal(m.get('bootstrap_last_success_timestamp_seconds'), Date.parse('2026-11-20T09:00:01.250Z') / 1000);
      assert.equal(m.get('bootstrap_last_run_timestamp_seconds'), Date.parse('2026-11-21T10:15:00.500Z') / 1000);
      assert.equal(m.get('bootstrap_failed_runs_since_success'), 3);
      assert.equal(m.get('bootstrap_drift_steps'), 2);
      assert.equal(m.get('bootstrap_last_verify_timestamp_seconds'), Date.parse('2026-11-21T11:00:02.000Z') / 1000);
      assert.equal(m.get('bootstrap_disabled'), 1);
      assert.equal(m.get('bootstrap_disabled_since_timestamp_seconds'), Date.parse('2026-11-21T12:00:00.000Z') / 1000);
      assertFromState(m, s);
      assert.doesNotMatch(readFileSync(join(r.prom, runFile), 'utf8'), /maintenance|alice/, 'no free text from state.json in a label');
    }));

  it('a refusal (77: a group-writable step): bootstrap.prom is written all the same, valid and agreeing with state.json', () =>
    withRig(async (r) => {
      tree(r);
      assert.equal((await r.run(['server.provision'])).code, 0);
      rmSync(join(r.prom, runFile));
      chmodSync(script(join(r.box.phasesDir, 'configure.d', '40-bad'), 'true'), 0o775);
      const refused = await r.run(['server.refresh']);
      assert.equal(refused.code, 77, refused.stderr);
      const s = r.state();
      const m = r.scrape();
      assertFromState(m, s);
      if (s.last_run.status === 'refused') assert.equal(m.get('bootstrap_last_run_exit_code'), 77); // once refused runs are recorded
    }));

  it('a pause for a reboot: waiting_for_reboot 1 (no run finished yet: timestamps 0); after the resume 0, and the resumed run is the last', () =>
    withRig(
      async (r) => {
        const bootFile = join(r.box.dir, 'boot_id');
        writeFileSync(bootFile, 'boot-1\n');
        const env = { BOOTSTRAP_TEST_BOOT_ID_FILE: bootFile };
        script(join(r.box.phasesDir, 'configure.d', '10-kernel'), '# bootstrap: may-reboot\n[ -e "$LOG.asked" ] || { touch "$LOG.asked"; echo "new kernel" > "$BOOTSTRAP_REBOOT_FILE"; }');
        const paused = await r.run(['server.provision'], env);
        assert.equal(paused.code, 0, paused.stderr);
        assert.ok(r.state().paused_run, 'paused');
        let m = r.scrape();
        assert.equal(m.get('bootstrap_waiting_for_reboot'), 1);
        assert.equal(m.get('bootstrap_last_run_timestamp_seconds'), 0);
        assert.equal(m.get('bootstrap_last_success_timestamp_seconds'), 0, 'never succeeded: 0, not absent');
        assertFromState(m, r.state());
        writeFileSync(bootFile, 'boot-2\n');
        const resumed = await r.run(['server.resume'], env);
        assert.equal(resumed.code, 0, resumed.stderr);
        m = r.scrape();
        assert.equal(m.get('bootstrap_waiting_for_reboot'), 0);
        assert.equal(m.get('bootstrap_last_run_success'), 1);
        assertFromState(m, r.state());
      },
      { phases: { reboot_command: 'true' } },
    ));

  it('disabled (state.disabled written by hand): the timer\'s server.refresh exits 0 and bootstrap.prom says disabled since when', () =>
    withRig(async (r) => {
      tree(r);
      assert.equal((await r.run(['server.provision'])).code, 0);
      const s = r.state();
      s.disabled = { since: '2026-11-21T12:00:00.000Z', by: 'root (uid 0)', reason: 'maintenance' };
      writeFileSync(join(r.box.stateDir, 'state.json'), JSON.stringify(s), { mode: 0o600 });
      rmSync(join(r.prom, runFile));
      const refresh = await r.run(['server.refresh']);
      assert.equal(refresh.code, 0, refresh.stderr);
      const m = r.scrape();
      assert.equal(m.get('bootstrap_disabled'), 1);
      assert.equal(m.get('bootstrap_disabled_since_timestamp_seconds'), Date.parse('2026-11-21T12:00:00.000Z') / 1000);
      assertFromState(m, r.state());
    }));

  // server.verify is another branch's: this runs once it is merged (and Agent.verify writes the metrics).
  it('after server.verify: drift_steps and when; the last run stays the last run', { skip: !existsSync(join(root, 'dist/src/run/verify.js')) && 'server.verify is not on this branch' }, () =>
    withRig(async (r) => {
      tree(r);
      script(join(r.box.phasesDir, 'configure.d', '20-same.check'), '[ ! -e "$LOG.drift" ]');
      assert.equal((await r.run(['server.provision'])).code, 0);
      const last = r.state().last_run;
      writeFileSync(join(r.box.dir, 'steps.log.drift'), '');
      const verify = await r.run(['server.verify']);
      assert.equal(verify.code, 2, verify.stderr);
      const m = r.scrape();
      assert.equal(m.get('bootstrap_drift_steps'), 1);
      assert.equal(m.get('bootstrap_last_verify_timestamp_seconds'), secs(r.state().last_verify.finished_at));
      assert.equal(m.get('bootstrap_last_run_timestamp_seconds'), secs(last.finished_at));
      assertFromState(m, r.state());
    }));

  it('heartbeat.checkup writes bootstrap_heartbeat.prom only (up per check, healthy, when); heartbeat.get and a dry run write nothing', () =>
    withRig(async (r) => {
      const checkup = await r.run(['heartbeat.checkup']);
      assert.equal(checkup.code, 1, 'one check is unhealthy');
      assert.equal(existsSync(join(r.prom, runFile)), false, 'the heartbeat timer never writes the run file');
      const m = r.scrape(beatFile);
      assert.equal(m.get('bootstrap_heartbeat_up{check="ok"}'), 1);
      assert.equal(m.get('bootstrap_heartbeat_up{check="bad"}'), 0);
      assert.equal(m.get('bootstrap_heartbeat_healthy'), 0);
      assert.equal(m.get('bootstrap_heartbeat_last_checkup_timestamp_seconds'), secs(r.state().last_checkup.finished_at));
      assert.ok(m.has('bootstrap_heartbeat_latency_seconds{check="ok"}'));
      rmSync(join(r.prom, beatFile));
      assert.equal((await r.run(['heartbeat.get', 'ok'])).code, 0);
      tree(r);
      assert.equal((await r.run(['server.provision', '--dry-run'])).code, 0);
      assert.deepEqual(readdirNames(r.prom), [], 'nothing written');
    }));

  it('callbacks: one refused for good (401) and one waiting (receiver down) are counted dead and pending', async () => {
    const refuse = await httpStub((_req, res) => {
      res.statusCode = 401;
      res.end('no');
    });
    try {
      await withRig(
        async (r) => {
          tree(r);
          const dead = await r.run(['server.provision', '--callback-url', `${refuse.url}/cb`]);
          assert.equal(dead.code, 0, dead.stderr);
          let m = r.scrape();
          assert.equal(m.get('bootstrap_callbacks_dead'), 1);
          assert.equal(m.get('bootstrap_callbacks_pending'), 0);
          const down = await r.run(['server.refresh', '--callback-url', 'http://127.0.0.1:9/down']);
          assert.equal(down.code, 0, down.stderr);
          m = r.scrape();
          assert.equal(m.get('bootstrap_callbacks_dead'), 1);
          assert.equal(m.get('bootstrap_callbacks_pending'), 1);
        },
        { extra: '\n[callback]\ntimeout = 1\n' },
      );
    } finally {
      await refuse.close();
    }
  });
});

describe('metrics: a textfile dir that cannot be written', () => {
  it('missing: one warning naming it, ENOENT and what to do; the dir is not created; exit codes 0 and 1 unchanged', () =>
    withRig(
      async (r) => {
        tree(r);
        const ok = await r.run(['server.provision']);
        assert.equal(ok.code, 0, ok.stderr);
        const warnings = ok.stderr.split('\n').filter((l) => /metrics not written/.test(l));
        assert.equal(warnings.length, 1, ok.stderr);
        assert.match(warnings[0]!, new RegExp(`metrics not written: \\[metrics\\] textfile_dir ${r.prom} does not exist \\(ENOENT\\); create it .* or unset \\[metrics\\] textfile_dir`));
        writeFileSync(join(r.box.dir, 'steps.log.fail'), '');
        const failed = await r.run(['server.refresh']);
        assert.equal(failed.code, 1, failed.stderr);
        assert.match(failed.stderr, /metrics not written: .*ENOENT/);
        assert.equal(existsSync(r.prom), false);
      },
      { makeDir: false },
    ));

  it('not writable by the user running bootstrap (uid 65534): one warning with the file, EACCES, the uid and what to do; the run succeeds', async () => {
    const open = mkdtempSync(join(tmpdir(), 'bootstrap-metrics-'));
    try {
      chmodSync(open, 0o755);
      const prom = join(open, 'prom');
      mkdirSync(prom);
      chmodSync(prom, 0o755); // others may read, not write
      const phases = join(open, 'phases');
      script(join(phases, 'configure.d', '10-a'), 'true');
      for (const d of [phases, join(phases, 'configure.d')]) chmodSync(d, 0o755); // whatever the test's umask
      const state = join(open, 'state');
      mkdirSync(state, { mode: 0o700 });
      chownSync(state, 65534, 65534);
      const ini = join(open, 'bootstrap.ini');
      writeFileSync(ini, iniWith({}, `\n[metrics]\ntextfile_dir = ${prom}\n`));
      chmodSync(ini, 0o644);
      const env = { PATH: process.env['PATH'], BOOTSTRAP_CONFIG: ini, BOOTSTRAP_STATE_DIR: state, BOOTSTRAP_PHASES_DIR: phases };
      const r = await runCli(['server.provision'], { env, prefix: asNobody });
      assert.equal(r.code, 0, r.stderr);
      const warnings = r.stderr.split('\n').filter((l) => /metrics not written/.test(l));
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0]!, new RegExp(`metrics not written: cannot write ${prom}/bootstrap\\.prom: permission denied \\(EACCES\\) for uid 65534; make ${prom} writable by the user running bootstrap or unset \\[metrics\\] textfile_dir`));
      assert.deepEqual(readdirNames(prom), [], 'no temp file left behind');
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });
});

describe('metrics: writers at once', () => {
  it('runs, callback.flush in a loop and checkups write while a reader parses every read: never a torn or partial file', () =>
    withRig(async (r) => {
      tree(r);
      assert.equal((await r.run(['server.provision'])).code, 0);
      let writing = true;
      const contents = new Map<string, Set<string>>([
        [runFile, new Set()],
        [beatFile, new Set()],
      ]);
      let reads = 0;
      const reader = (async () => {
        const deadline = Date.now() + 300_000;
        while (writing && Date.now() < deadline) {
          for (const file of [runFile, beatFile]) {
            let text: string;
            try {
              text = readFileSync(join(r.prom, file), 'utf8');
            } catch {
              continue; // the heartbeat file before the first checkup
            }
            parseProm(text); // throws on a torn file
            const families = text.split('\n').filter((l) => l.startsWith('# TYPE')).length;
            assert.equal(families, file === runFile ? 15 : 5, `every family, in ${JSON.stringify(text)}`);
            contents.get(file)!.add(text);
            reads++;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const loop = async (n: number, args: string[]) => {
        for (let i = 0; i < n; i++) await r.run(args);
      };
      try {
        await Promise.all([loop(4, ['server.refresh', '--wait']), loop(12, ['callback.flush']), loop(8, ['heartbeat.checkup'])]);
      } finally {
        writing = false;
        await reader;
      }
      assert.ok(reads > 100, `the reader read ${reads} times`);
      assert.ok(contents.get(runFile)!.size >= 2, 'the run file changed while read');
      assert.ok(contents.get(beatFile)!.size >= 2, 'the heartbeat file changed while read');
      for (const [, texts] of contents) for (const text of [...texts].slice(0, 10)) promtool(text);
      assert.deepEqual(readdirNames(r.prom), [beatFile, runFile].sort(), 'no temp file left behind');
    }));
});

function readdirNames(dir: string): string[] {
  return readdirSync(dir).sort();
}
