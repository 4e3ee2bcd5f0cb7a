// server.status --check [--max-age D], black-box: exit 0 and an ok line when healthy, else exit 1
// and one line per problem (--json: {ok, problems: [{problem, message}]}). Real runs for success,
// failure and disable; state.json fields written by hand (valid per src/state/state.ts) for the
// rest; --max-age parsing (64); and no run lock taken (it answers during a run).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, json, type Sandbox } from '../helpers/cli.js';
import { iniWith, script, withBox } from '../helpers/phases.js';

const hour = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

function patchState(box: Sandbox, patch: Record<string, unknown>): void {
  const file = join(box.stateDir, 'state.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...patch }, null, 2));
}

async function check(box: Sandbox, extra: string[] = []) {
  const human = await box.run(['server.status', '--check', ...extra]);
  const machine = await box.run(['server.status', '--check', '--json', ...extra]);
  assert.equal(machine.code, human.code, 'the same verdict with --json');
  return { code: human.code, lines: human.stdout.split('\n').filter(Boolean), stderr: human.stderr, json: json(machine) };
}

/** A provisioned box whose one step runs `body` (default: succeeds). */
async function provisioned(box: Sandbox, body = 'exit 0'): Promise<void> {
  script(join(box.phasesDir, 'configure.d', '10-step'), body);
  const r = await box.run(['server.provision', '-q']);
  assert.equal(r.code, 0, r.stderr);
}

describe('server.status --check', () => {
  it('never provisioned: exit 1, "no run has succeeded yet"', withBox(iniWith(), async (box) => {
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.deepEqual(c.lines, ['no run has succeeded yet']);
    assert.equal(c.stderr, '');
    assert.deepEqual(c.json, { schema_version: 1, ok: false, problems: [{ problem: 'never-succeeded', message: 'no run has succeeded yet' }], last_success: null, max_age_seconds: 2100 });
  }));

  it('through real runs: ok after a success, 1 naming the step after a failure, ok again after a success', withBox(iniWith(), async (box) => {
    const flag = join(box.dir, 'fail');
    await provisioned(box, `[ ! -f "${flag}" ]`);
    const ok = await check(box);
    assert.equal(ok.code, 0, ok.lines.join('\n'));
    const id = json(await box.run(['runs.show', 'last', '--json'])).id;
    assert.match(ok.lines.join('\n'), new RegExp(`^ok: last success \\S+ \\(provision, run ${id}\\)$`));
    assert.equal(ok.json.ok, true);
    assert.deepEqual(ok.json.problems, []);
    assert.equal(ok.json.last_success.id, id);

    // What the run recorder writes after a success (written here: its code lands on another branch).
    const lastRun = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')).last_run;
    patchState(box, { last_success: { id: lastRun.id, action: lastRun.action, finished_at: lastRun.finished_at } });
    writeFileSync(flag, '');
    assert.equal((await box.run(['server.refresh', '-q'])).code, 1);
    const failed = await check(box);
    assert.equal(failed.code, 1);
    const failedId = json(await box.run(['runs.show', 'last', '--json'])).id;
    assert.equal(failed.lines.length, 1, failed.lines.join('\n'));
    assert.match(failed.lines[0]!, new RegExp(`^the last run \\(refresh, run ${failedId}\\) failed at \\S+: configure/10-step \\(exit\\)`));
    assert.deepEqual(failed.json.problems.map((p: { problem: string }) => p.problem), ['failed']);

    patchState(box, { last_success: undefined }); // as the recorder does not know it: the successful last run counts
    rmSync(flag);
    assert.equal((await box.run(['server.refresh', '-q'])).code, 0);
    assert.equal((await check(box)).code, 0);
  }));

  it('disabled (a real server.disable): exit 1 with the disabled line; ok again after server.enable', withBox(iniWith(), async (box) => {
    await provisioned(box);
    await box.run(['server.disable', '--reason', 'maintenance \u00e9 OPS-7'], { env: { SUDO_USER: 'bob' } });
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.match(c.lines.join('\n'), /^disabled since \S+ by bob \(uid 0, via sudo\): maintenance é OPS-7$/);
    assert.equal(c.json.problems[0].problem, 'disabled');
    await box.run(['server.enable']);
    assert.equal((await check(box)).code, 0);
  }));

  it('a last success older than --max-age (default 35 min): stale, with its age; a longer --max-age passes', withBox(iniWith(), async (box) => {
    await provisioned(box);
    patchState(box, { last_success: { id: '20261201T000000Z-aaaaaa', action: 'refresh', finished_at: ago(2 * hour) } });
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.match(c.lines.join('\n'), /^the last success \(refresh, run 20261201T000000Z-aaaaaa\) was at \S+, 2 h ago: older than --max-age 35 min$/);
    assert.equal(c.json.problems[0].problem, 'stale');
    assert.equal((await check(box, ['--max-age', '1h'])).code, 1);
    const longer = await check(box, ['--max-age', '3h']);
    assert.equal(longer.code, 0, longer.lines.join('\n'));
    assert.equal(longer.json.max_age_seconds, 3 * 3600);
    assert.equal((await check(box, ['--max-age=10800'])).code, 0, 'seconds without a unit');
  }));

  it('a refused last run: refused, with its exit code and the failures since the last success', withBox(iniWith(), async (box) => {
    await provisioned(box);
    const last = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')).last_run;
    patchState(box, { last_run: { ...last, id: '20261205T010000Z-bbbbbb', status: 'refused', exit_code: 77, failure: null }, last_success: { id: last.id, action: last.action, finished_at: last.finished_at }, failed_runs_since_success: 2 });
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.match(c.lines.join('\n'), /^the last run \(provision, run 20261205T010000Z-bbbbbb\) was refused at \S+ \(exit 77\); 2 failed runs since the last success$/);
    assert.deepEqual(c.json.problems.map((p: { problem: string }) => p.problem), ['refused']);
  }));

  it('a run waiting for its reboot for more than 30 min: reboot-wait', withBox(iniWith(), async (box) => {
    await provisioned(box);
    const pausedRun = { id: '20261205T020000Z-cccccc', action: 'refresh', label: null, phase: 'configure', step: '30-kernel', reason: 'new kernel', requested_at: ago(hour), boot_id: 'not-this-boot', reboots: 1, resuming: null };
    patchState(box, { paused_run: { ...pausedRun, requested_at: ago(10 * 60_000) } });
    assert.equal((await check(box)).code, 0, 'ten minutes is a reboot, not a problem');
    patchState(box, { paused_run: pausedRun });
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.match(c.lines.join('\n'), /^run 20261205T020000Z-cccccc \(refresh\) has waited 60 min for the reboot configure\/30-kernel asked for at \S+ \(new kernel\); bootstrap server\.resume continues it after the reboot$/);
    assert.equal(c.json.problems[0].problem, 'reboot-wait');
  }));

  it('an unhealthy last checkup: unhealthy, naming the checks; a healthy one is fine', withBox(iniWith(), async (box) => {
    await provisioned(box);
    const checkup = { healthy: false, started_at: ago(60_000), finished_at: ago(59_000), results: [{ name: 'web', type: 'http', healthy: false, detail: 'HTTP 503', latency_ms: 3 }] };
    patchState(box, { last_checkup: checkup });
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.deepEqual(c.lines, [`the last checkup at ${checkup.finished_at} was unhealthy: web`]);
    patchState(box, { last_checkup: { ...checkup, healthy: true, results: [{ ...checkup.results[0], healthy: true }] } });
    assert.equal((await check(box)).code, 0);
  }));

  it('a dead callback: dead-callbacks', withBox(iniWith(), async (box) => {
    await provisioned(box);
    writeFileSync(join(box.stateDir, 'outbox', 'dead', '20261205T030000000Z-dddddd.json'), '{}');
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.deepEqual(c.lines, ['1 callback is dead in outbox/dead/, never retried (fix the receiver, then bootstrap callback.flush --requeue-dead)']);
    assert.equal(c.json.problems[0].problem, 'dead-callbacks');
  }));

  it('every problem at once: one line each, in a fixed order; control characters escaped', withBox(iniWith(), async (box) => {
    await provisioned(box);
    await box.run(['server.disable', '--reason', 'all of it']);
    const last = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')).last_run;
    patchState(box, {
      last_run: { ...last, status: 'failure', exit_code: 1, failure: { phase: 'configure', step: 'evil\nstep\x1b[2J', kind: 'exit', exit_code: 1 } },
      last_success: { id: 'old', action: 'provision', finished_at: ago(48 * hour) },
      paused_run: { id: 'p', action: 'refresh', label: null, phase: 'configure', step: 's', reason: 'r', requested_at: ago(hour), boot_id: null, reboots: 1, resuming: null },
      last_checkup: { healthy: false, started_at: ago(1000), finished_at: ago(1000), results: [] },
    });
    writeFileSync(join(box.stateDir, 'outbox', 'dead', '20261205T030000000Z-eeeeee.json'), '{}');
    const c = await check(box);
    assert.equal(c.code, 1);
    assert.deepEqual(c.json.problems.map((p: { problem: string }) => p.problem), ['disabled', 'stale', 'failed', 'reboot-wait', 'unhealthy', 'dead-callbacks']);
    assert.equal(c.lines.length, 6, c.lines.join('\n'));
    assert.match(c.lines[2]!, /configure\/evil\\nstep\\x1b\[2J \(exit\)/);
    assert.doesNotMatch(c.lines.join(''), /\x1b/);
  }));

  it('--max-age: a positive duration up to 24 days, only with --check (else 64)', withBox(iniWith(), async (box) => {
    for (const bad of ['abc', '0', '-5', '30x', '25d', '', '1h30m']) {
      const r = await box.run(['server.status', '--check', `--max-age=${bad}`]);
      assert.equal(r.code, 64, `--max-age=${bad}: ${r.stderr}`);
      assert.match(r.stderr, /^bootstrap: --max-age .*: not a positive duration up to 24 days \(write seconds, or a number with a unit: 90, 30m, 2h, 1d\)\n$/);
      const j = await box.run(['server.status', '--check', '--json', `--max-age=${bad}`]);
      assert.equal(json(j).error.code, 64);
    }
    assert.equal((await box.run(['server.status', '--check', '--wait=5'])).code, 64, '--check never waits');
    const alone = await box.run(['server.status', '--max-age', '1h']);
    assert.equal(alone.code, 64);
    assert.match(alone.stderr, /--max-age is for --check/);
    for (const good of ['90', '30s', '45m', '2h', '1.5d', '24d']) assert.equal((await box.run(['server.status', '--check', '--max-age', good])).code, 1, good);
  }));

  it('takes no run lock: it answers while a run holds it, and says so when the last success is old', withBox(iniWith(), async (box) => {
    const go = join(box.dir, 'go');
    const started = join(box.dir, 'started');
    await provisioned(box, `if [ "$BOOTSTRAP_ACTION" = refresh ]; then touch "${started}"; while [ ! -f "${go}" ]; do sleep 0.05; done; fi`);
    patchState(box, { last_success: { id: 'old', action: 'provision', finished_at: ago(hour) } });
    const running = collect(box.start(['server.refresh', '-q']), 120_000);
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(started)) {
        assert.ok(Date.now() < deadline, 'the step started');
        await new Promise((r) => setTimeout(r, 25));
      }
      const c = await check(box);
      assert.equal(c.code, 1);
      assert.match(c.lines.join('\n'), /older than --max-age 35 min; a run is going on since \S+$/);
    } finally {
      writeFileSync(go, '');
    }
    assert.equal((await running).code, 0);
  }));
});
