// What an outbox file's name says without reading it: id, when it was queued, kind, receiver.
// Files of older versions (`<created>-<id>.json`) keep working: id and time, kind and receiver unknown.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Outbox, idFromName, parseName, urlTag } from '../../../src/callback/outbox.js';

describe('outbox file names', () => {
  it('a new name says id, time, kind and receiver; an old one id and time', () => {
    const name = '20261205T072620123Z-20261205T072620Z-ab12cd.reboot-2@checkup.config.json';
    assert.deepEqual(parseName(name), { name, id: '20261205T072620Z-ab12cd.reboot-2', queuedMs: Date.parse('2026-12-05T07:26:20.123Z'), kind: 'checkup', receiver: 'config' });
    assert.equal(idFromName(name), '20261205T072620Z-ab12cd.reboot-2');
    const old = '20200101T000000000Z-cb-7.json';
    assert.deepEqual(parseName(old), { name: old, id: 'cb-7', queuedMs: Date.parse('2020-01-01T00:00:00.000Z'), kind: null, receiver: null });
    assert.equal(parseName('not-a-callback.json').queuedMs, null);
  });

  it('add names the file after the body kind and the receiver; held ones are found by run id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-names-'));
    try {
      const outbox = new Outbox(dir);
      mkdirSync(outbox.dir, { mode: 0o700 }); // the state store makes it
      const base = { created_at: '2026-12-05T07:26:20.123Z', body: '{}', attempts: 0, last_error: null };
      await outbox.add({ ...base, id: 'r1', url_source: 'config', url: null, kind: 'run' });
      await outbox.add({ ...base, id: 'c1', url_source: 'flag', url: 'http://127.0.0.1:9/x?token=t', kind: 'checkup' });
      const held = await outbox.add({ ...base, id: 'r2.reboot-1', url_source: 'config', url: null, kind: 'run' }, { held: true });
      assert.deepEqual(readdirSync(outbox.dir).sort(), [
        '20261205T072620123Z-c1@checkup.' + urlTag('http://127.0.0.1:9/x?token=t') + '.json',
        '20261205T072620123Z-r1@run.config.json',
        '20261205T072620123Z-r2.reboot-1@run.config.json.hold',
      ]);
      assert.match(urlTag('http://127.0.0.1:9/x?token=t'), /^u[0-9a-f]{16}$/, 'no URL, no token in a name');
      assert.deepEqual(await outbox.held('r2'), [held]);
      assert.deepEqual(await outbox.held('r'), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
