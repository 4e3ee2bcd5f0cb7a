// Unit tests for src/state/state.ts's parseState: state.json is checked to the leaves, reported
// with the path of what is off, never reset, and never shows a value in a message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExitCode, StateError } from '../../../src/errors.js';
import { emptyState, parseState, stateSchema } from '../../../src/state/state.js';

const file = '/var/lib/bootstrap/state.json';

/** Asserts parseState throws a StateError; `why` is what follows "is broken: " (or a pattern for the message). */
function broken(text: string, why: RegExp | string): StateError {
  let caught: unknown;
  assert.throws(() => parseState(text, file), (err: unknown) => ((caught = err), true));
  assert.ok(caught instanceof StateError, `expected StateError, got ${String(caught)}`);
  assert.equal(caught.exitCode, ExitCode.cantWrite);
  if (typeof why === 'string') assert.equal(caught.message, `state file ${file} is broken: ${why}`);
  else assert.match(caught.message, why);
  return caught;
}

describe('parseState', () => {
  it('fills what a minimal file leaves out', () => {
    assert.deepEqual(parseState('{"schema":1,"products":{}}', file), emptyState());
  });

  it('needs products (every state bootstrap writes has it)', () => {
    broken('{"schema":1}', 'products is missing, not an object');
  });

  it('keeps a full file as it is, and fields it does not know (a newer minor field)', () => {
    const doc = {
      schema: 1,
      mode: 'active',
      provisioned_at: '2026-01-01T00:00:00Z',
      products: { web: { enabled: true, version: '1.2', settings: { port: 80, tls: false, name: 'x' } } },
      last_run: { id: 'r1', action: 'refresh', status: 'failure', exit_code: 1, started_at: 'a', finished_at: 'b', duration_ms: 5, failure: { phase: 'configure', step: '10-x', kind: 'exit', exit_code: 3 } },
      paused_run: { id: 'r2', action: 'upgrade', phase: 'configure', step: '20-y', reason: 'kernel', requested_at: 'c', reboots: 1, resuming: null },
      last_checkup: { healthy: true, started_at: 'd', finished_at: 'e', results: [{ name: 'web', type: 'http', healthy: true, detail: '200', latency_ms: 3 }] },
      future_field: { anything: [1] },
    };
    assert.deepEqual(parseState(JSON.stringify(doc), file), doc);
  });

  it('says an empty file is empty', () => {
    broken('', 'it is empty');
    broken(' \n\t', 'it is empty');
  });

  it('refuses text that is not JSON, or not an object', () => {
    broken('{"schema":1', /is broken: not JSON \(/);
    broken('[]', 'not a JSON object');
    broken('null', 'not a JSON object');
    broken('"x"', 'not a JSON object');
  });

  it('refuses a missing or odd schema', () => {
    broken('{}', '"schema" is missing, not a schema number (1, 2, …)');
    broken('{"schema":0}', '"schema" is 0, not a schema number (1, 2, …)');
    broken('{"schema":1.5}', /"schema" is 1.5,/);
    broken('{"schema":"1"}', /"schema" is "1",/);
  });

  it('refuses a newer schema with a hint to upgrade, not as broken', () => {
    const err = broken(JSON.stringify({ schema: stateSchema + 1, products: {} }), new RegExp(`^state file ${file} has schema ${stateSchema + 1}, newer than the ${stateSchema} this bootstrap knows$`));
    assert.equal(err.hint, 'upgrade bootstrap-agent');
  });

  it('names the path of a wrong leaf, and hints never to reset', () => {
    const err = broken('{"schema":1,"products":{"web":{"enabled":"yes","settings":{}}}}', 'products.web.enabled is a string, not a boolean');
    assert.match(err.hint ?? '', /bootstrap never resets it/);
    broken('{"schema":1,"products":{"web":{"enabled":true}}}', 'products.web.settings is missing, not an object');
    broken('{"schema":1,"products":{},"last_run":{"id":"r"}}', 'last_run.action is missing or null');
    broken('{"schema":1,"products":{},"last_checkup":{"healthy":true,"started_at":"a","finished_at":"b","results":[{}]}}', 'last_checkup.results[0].name is missing or null');
    broken('{"schema":1,"products":{},"mode":5}', 'mode is a number, not a string');
  });

  it('never shows a value in a message (it may be a secret)', () => {
    const err = broken('{"schema":1,"products":{"db":{"enabled":true,"settings":{"password":["hunter2"]}}}}', 'products.db.settings.password is an array, not a string or number or boolean');
    assert.doesNotMatch(err.message + (err.hint ?? ''), /hunter2/);
  });
});
