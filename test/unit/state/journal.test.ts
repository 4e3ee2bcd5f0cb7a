// Unit tests for src/state/journal.ts's JournalStore.newId: a new run id sorts after every
// journal of the same second (a refusal and the run after it), so `last` is the newest run.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRunId, JournalStore, newRunId } from '../../../src/state/journal.js';

describe('JournalStore.newId', () => {
  it('sorts after the journals of its second, and is a run id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-journal-'));
    try {
      const store = new JournalStore(dir);
      const now = new Date('2026-12-05T07:00:00.500Z');
      assert.ok(isRunId(await store.newId(now)), 'no runs dir: a plain id');
      mkdirSync(join(dir, 'runs'));
      const second = newRunId(now).slice(0, 16);
      writeFileSync(join(dir, 'runs', `${second}-fffe00.json`), '{}');
      writeFileSync(join(dir, 'runs', '20261205T065959Z-ffffff.json'), '{}'); // an earlier second does not matter
      for (let i = 0; i < 50; i++) {
        const id = await store.newId(now);
        assert.ok(isRunId(id), id);
        assert.ok(id > `${second}-fffe00`, `${id} sorts after the latest of its second`);
        assert.ok(id.startsWith(`${second}-`), id);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
