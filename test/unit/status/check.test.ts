// Unit tests for src/status/check.ts: each problem of `server.status --check` from a hand-made
// state (the time pinned), the default --max-age against the shipped refresh timer, and the
// validation of server.disable's reason (src/run/disable.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkStatus, defaultMaxAgeMs, describeAge, lastSuccessOf, rebootWaitMs, type CheckInput } from '../../../src/status/check.js';
import { maxReasonChars, operatorName, validateReason } from '../../../src/run/disable.js';
import { parseDuration } from '../../../src/config/config.js';
import { root } from '../../helpers/cli.js';
import type { LastRun, PausedRun, StateDoc } from '../../../src/state/state.js';

const now = Date.parse('2026-12-05T12:00:00.000Z');
const ago = (ms: number) => new Date(now - ms).toISOString();
const min = 60_000;

function run(status: LastRun['status'], finishedAgoMs: number, extra: Partial<LastRun> = {}): LastRun {
  return { id: '20261205T115000Z-abcdef', action: 'refresh', status, exit_code: status === 'success' ? 0 : 1, started_at: ago(finishedAgoMs + 1000), finished_at: ago(finishedAgoMs), duration_ms: 1000, failure: null, ...extra };
}

function input(state: Partial<StateDoc>, extra: Partial<CheckInput> = {}): CheckInput {
  const base = { last_run: run('success', 5 * min), last_checkup: null };
  return { state: { ...base, last_success: { id: 'x-1', action: 'refresh', finished_at: ago(5 * min) }, ...state }, callbacks: { dead: 0 }, now, ...extra };
}

const kinds = (i: CheckInput) => checkStatus(i).problems.map((p) => p.problem);

const paused = (requestedAgoMs: number, resuming: PausedRun['resuming'] = null): PausedRun => ({
  id: '20261205T100000Z-123456', action: 'provision', label: null, phase: 'configure', step: '30-kernel', reason: 'new kernel', requested_at: ago(requestedAgoMs), boot_id: 'b1', reboots: 1, resuming,
});

describe('server.status --check (checkStatus)', () => {
  it('a recent success and nothing else: ok, no problem', () => {
    const r = checkStatus(input({}));
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.equal(r.maxAgeMs, defaultMaxAgeMs);
  });

  it('never succeeded (a fresh server, or only failures): never-succeeded', () => {
    assert.deepEqual(kinds(input({ last_run: null, last_success: null })), ['never-succeeded']);
    assert.deepEqual(kinds(input({ last_run: run('failure', min), last_success: null })), ['never-succeeded', 'failed']);
    assert.match(checkStatus(input({ last_run: null, last_success: null })).problems[0]!.message, /^no run has succeeded yet$/);
  });

  it('a success older than --max-age is stale; the age and the bound are named; a run going on is said', () => {
    const i = input({ last_success: { id: 'r-9', action: 'provision', finished_at: ago(50 * min) } });
    assert.deepEqual(kinds({ ...i, maxAgeMs: 60 * min }), []);
    const stale = checkStatus({ ...i, maxAgeMs: 40 * min, runningSince: '2026-12-05T11:55:00.000Z' });
    assert.deepEqual(stale.problems.map((p) => p.problem), ['stale']);
    assert.equal(stale.problems[0]!.message, `the last success (provision, run r-9) was at ${ago(50 * min)}, 50 min ago: older than --max-age 40 min; a run is going on since 2026-12-05T11:55:00.000Z`);
    // Exactly at the bound is still fine.
    assert.deepEqual(kinds({ ...i, maxAgeMs: 50 * min }), []);
  });

  it('the default --max-age: 35 min', () => {
    assert.deepEqual(kinds(input({ last_success: { id: 'a', action: 'refresh', finished_at: ago(34 * min) } })), []);
    assert.deepEqual(kinds(input({ last_success: { id: 'a', action: 'refresh', finished_at: ago(36 * min) } })), ['stale']);
  });

  it('the last run failed: its step and kind, and the failures since the last success', () => {
    const failure = { phase: 'configure', step: '20-haproxy', kind: 'exit', exit_code: 3 };
    const r = checkStatus(input({ last_run: run('failure', min, { failure }), failed_runs_since_success: 3 }));
    assert.deepEqual(r.problems, [{ problem: 'failed', message: `the last run (refresh, run 20261205T115000Z-abcdef) failed at ${ago(min)}: configure/20-haproxy (exit); 3 failed runs since the last success` }]);
  });

  it('the last run was refused: refused, with its exit code', () => {
    const r = checkStatus(input({ last_run: run('refused', min, { exit_code: 77 }) }));
    assert.deepEqual(r.problems.map((p) => p.problem), ['refused']);
    assert.match(r.problems[0]!.message, /was refused at .* \(exit 77\)$/);
  });

  it('a run waiting for its reboot past 30 min is a problem; shorter, or resuming, is not', () => {
    assert.deepEqual(kinds(input({ paused_run: paused(rebootWaitMs - min) })), []);
    assert.deepEqual(kinds(input({ paused_run: paused(rebootWaitMs + min) })), ['reboot-wait']);
    assert.deepEqual(kinds(input({ paused_run: paused(3 * rebootWaitMs, { boot_id: 'b2', started_at: ago(min) }) })), []);
    assert.match(checkStatus(input({ paused_run: paused(rebootWaitMs + min) })).problems[0]!.message, /run 20261205T100000Z-123456 \(provision\) has waited 31 min for the reboot configure\/30-kernel asked for/);
  });

  it('the last checkup: unhealthy names the failing checks; none at all is no problem', () => {
    const checkup = { healthy: false, started_at: ago(min), finished_at: ago(min), results: [{ name: 'web', type: 'http', healthy: false, detail: 'x', latency_ms: 1 }, { name: 'db', type: 'tcp', healthy: true, detail: 'ok', latency_ms: 1 }] };
    assert.deepEqual(checkStatus(input({ last_checkup: checkup })).problems, [{ problem: 'unhealthy', message: `the last checkup at ${ago(min)} was unhealthy: web` }]);
    assert.deepEqual(kinds(input({ last_checkup: { ...checkup, healthy: true } })), []);
    assert.deepEqual(kinds(input({ last_checkup: null })), []);
  });

  it('dead callbacks: counted', () => {
    assert.deepEqual(checkStatus(input({}, { callbacks: { dead: 2 } })).problems.map((p) => p.message), ['2 callbacks are dead in outbox/dead/, never retried (fix the receiver, then bootstrap callback.flush --requeue-dead)']);
  });

  it('disabled comes first, as its one line; every problem at once, in order, each one line', () => {
    const state: Partial<StateDoc> = {
      disabled: { since: '2026-12-05T09:00:00.000Z', by: 'alice (uid 0, via sudo)', reason: 'kernel\nupgrade' },
      last_run: run('failure', 60 * min),
      last_success: { id: 'old', action: 'provision', finished_at: ago(24 * 60 * min) },
      paused_run: paused(2 * rebootWaitMs),
      last_checkup: { healthy: false, started_at: ago(1), finished_at: ago(1), results: [] },
    };
    const r = checkStatus(input(state, { callbacks: { dead: 1 } }));
    assert.deepEqual(r.problems.map((p) => p.problem), ['disabled', 'stale', 'failed', 'reboot-wait', 'unhealthy', 'dead-callbacks']);
    assert.equal(r.problems[0]!.message, 'disabled since 2026-12-05T09:00:00.000Z by alice (uid 0, via sudo): kernel\\nupgrade');
    for (const p of r.problems) assert.doesNotMatch(p.message, /[\x00-\x1f]/);
    assert.equal(r.ok, false);
  });

  it('a state written before last_success was recorded: a successful last run counts as the last success', () => {
    const { last_success: _, ...old } = input({}).state;
    assert.deepEqual(lastSuccessOf({ ...old, last_run: run('success', min) }), { id: '20261205T115000Z-abcdef', action: 'refresh', finished_at: ago(min) });
    assert.equal(lastSuccessOf({ ...old, last_run: run('failure', min) }), null);
    // Recorded (even as null): what is recorded counts.
    assert.equal(lastSuccessOf({ ...old, last_run: run('success', min), last_success: null }), null);
  });

  it('ages read as an operator reads them', () => {
    assert.deepEqual([40_000, 35 * min, 125 * min, 120 * min, 50 * 60 * min, 72 * 60 * min].map(describeAge), ['40 s', '35 min', '2 h 5 min', '2 h', '2 d 2 h', '3 d']);
  });
});

describe('the default --max-age and the shipped refresh timer', () => {
  it('is twice OnUnitInactiveSec plus RandomizedDelaySec of systemd/bootstrap-refresh.timer', () => {
    const timer = readFileSync(join(root, 'systemd/bootstrap-refresh.timer'), 'utf8');
    const value = (key: string) => {
      const m = new RegExp(`^${key}=(\\S+)$`, 'm').exec(timer);
      assert.ok(m, `${key}= in the timer`);
      const ms = parseDuration(m[1]!.replace(/min$/, 'm'));
      assert.ok(ms !== null, `${key}=${m[1]} reads as a duration`);
      return ms;
    };
    assert.equal(defaultMaxAgeMs, 2 * value('OnUnitInactiveSec') + value('RandomizedDelaySec'));
    assert.equal(defaultMaxAgeMs, 35 * min);
  });
});

describe('server.disable --reason (validateReason, operatorName)', () => {
  it('trims, and takes 1 to 500 characters on one line', () => {
    assert.equal(validateReason('  kernel upgrade, OPS-1 '), 'kernel upgrade, OPS-1');
    assert.equal(validateReason('ä'.repeat(maxReasonChars)), 'ä'.repeat(maxReasonChars));
    assert.equal(validateReason('🔧'.repeat(maxReasonChars)).length, 2 * maxReasonChars, 'characters, not UTF-16 units');
  });

  it('refuses none, blank, too long, and control characters (64)', () => {
    for (const bad of [undefined, '', '   ', 'x'.repeat(maxReasonChars + 1), 'a\nb', 'a\x1b[31mb', 'a\u009bb', 'a\u2028b', 'tab\there']) {
      assert.throws(() => validateReason(bad), (e: { exitCode?: number }) => e.exitCode === 64, JSON.stringify(bad));
    }
  });

  it('names the operator: SUDO_USER under sudo, else the login name, with the uid; escaped and bounded', () => {
    assert.equal(operatorName({ SUDO_USER: 'alice' }, 0), 'alice (uid 0, via sudo)');
    assert.match(operatorName({}, 0), /^(\S+ \(uid 0\)|uid 0)$/);
    assert.equal(operatorName({ SUDO_USER: 'a\x1bb' }, 0), 'a\\x1bb (uid 0, via sudo)');
    assert.ok(operatorName({ SUDO_USER: 'x'.repeat(500) }, 0).length < 100);
  });
});
