// Unit tests for src/callback/payload.ts's runCallback: a failure carries the failed step's (or
// its check's) last output lines, bounded in lines and bytes, and the body stays valid against
// the published schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCallback } from '../../../src/callback/payload.js';
import type { RunJournal, StepRecord } from '../../../src/state/journal-types.js';
import { root } from '../../helpers/cli.js';
import { validate } from '../../helpers/json-schema.js';

const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));

function step(name: string, output: string, extra: Partial<StepRecord> = {}): StepRecord {
  return { phase: 'configure', name, role: 'step', status: 'failure', exit_code: 5, started_at: '2026-12-05T00:00:00.000Z', duration_ms: 10, message: 'exit 5', output_tail: output, changes: [], ...extra } as StepRecord;
}

function journal(steps: StepRecord[], failure: RunJournal['failure']): RunJournal {
  return {
    schema: 1, id: '20261205T000000Z-abcdef', action: 'refresh', command: 'server.refresh', server: 'web-1', status: failure ? 'failure' : 'success',
    exit_code: failure ? 1 : 0, started_at: '2026-12-05T00:00:00.000Z', finished_at: '2026-12-05T00:00:01.000Z', duration_ms: 1000, phases_dir: '/etc/bootstrap/phases',
    mode: 'production', mode_previous: null, product: null, version: null, version_previous: null, products: {}, callback_url: null,
    phases: [{ phase: 'configure', status: failure ? 'failure' : 'success', duration_ms: 10, steps }], failure, backouts: [], error_steps: [], health: null,
  } as unknown as RunJournal;
}

describe('runCallback: the failure output tail', () => {
  it('is the failed step\'s last 20 lines, within 2 KiB, never cut inside a character', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, '0')} ${'é'.repeat(60)}`);
    const body = runCallback(journal([step('10-ok', 'fine', { status: 'success' }), step('20-bad', `${lines.join('\n')}\n`)], { phase: 'configure', step: '20-bad', kind: 'exit', exit_code: 5, message: 'exit 5' }));
    const tail = body.failure!.output_tail!;
    assert.ok(Buffer.byteLength(tail) <= 2048, `${Buffer.byteLength(tail)} bytes`);
    assert.ok(!tail.includes('\uFFFD'), 'no broken character');
    const got = tail.split('\n');
    assert.equal(got.at(-1), lines.at(-1));
    assert.deepEqual(got, lines.slice(-got.length), 'whole lines, the last ones');
    assert.ok(got.length >= 10 && got.length <= 20, `${got.length} lines`);
    assert.deepEqual(validate(schema, body), []);
  });

  it('one line longer than 2 KiB: its end', () => {
    const body = runCallback(journal([step('20-bad', `${'x'.repeat(3000)}é`)], { phase: 'configure', step: '20-bad', kind: 'exit', exit_code: 5, message: 'exit 5' }));
    const tail = body.failure!.output_tail!;
    assert.ok(Buffer.byteLength(tail) <= 2048 && tail.endsWith('xé') && !tail.includes('\uFFFD'));
    assert.deepEqual(validate(schema, body), []);
  });

  it('a failed check: the check\'s output; nothing printed: no output_tail; a success: no failure', () => {
    const check = step('20-bad.check', 'check says drift', { role: 'check' });
    check.status = 'failure';
    const failed = runCallback(journal([step('20-bad', 'applied', { status: 'success', check } as Partial<StepRecord>)], { phase: 'configure', step: '20-bad', kind: 'check', exit_code: 1, message: 'check failed' }));
    assert.equal(failed.failure!.output_tail, 'check says drift');
    // A check that timed out keeps kind timeout: still the check's output, not the applied step's.
    const timedOut = runCallback(journal([step('20-bad', 'applied', { status: 'failure', check: { ...check, status: 'failure', output_tail: 'check hung' } } as Partial<StepRecord>)], { phase: 'configure', step: '20-bad', kind: 'timeout', exit_code: null, message: 'check timed out' }));
    assert.equal(timedOut.failure!.output_tail, 'check hung');
    // Not applied, its check stood for it: the record is named NAME.check.
    const standIn = runCallback(journal([step('20-bad.check', 'drift seen', { role: 'check' })], { phase: 'configure', step: '20-bad', kind: 'check', exit_code: 1, message: 'check failed' }));
    assert.equal(standIn.failure!.output_tail, 'drift seen');
    // A failed .if: its output.
    const cond = runCallback(journal([step('20-bad', '', { condition: step('20-bad.if', 'cannot decide', { role: 'condition' }) } as Partial<StepRecord>)], { phase: 'configure', step: '20-bad', kind: 'condition', exit_code: 2, message: 'condition failed' }));
    assert.equal(cond.failure!.output_tail, 'cannot decide');
    const silent = runCallback(journal([step('20-bad', '')], { phase: 'configure', step: '20-bad', kind: 'exit', exit_code: 5, message: 'exit 5' }));
    assert.ok(silent.failure && !('output_tail' in silent.failure));
    assert.equal(runCallback(journal([step('10-ok', 'fine', { status: 'success' })], null)).failure, null);
    for (const b of [failed, silent]) assert.deepEqual(validate(schema, b), []);
  });
});
