// Unit tests for src/run/run-files.ts's removeChangesDir: the end of every run removes its changes
// dir, whatever a step left in it, and never what a link there points to.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { removeChangesDir } from '../../../src/run/run-files.js';

describe('removeChangesDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'bootstrap-test-run-files-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("removes the launcher's files, and a link without touching its target", async () => {
    const dir = join(root, 'a.changes');
    mkdirSync(dir);
    for (let i = 1; i <= 300; i++) writeFileSync(join(dir, `tag.${i}`), i % 7 ? '' : 'a change\n');
    writeFileSync(join(dir, 'tag.5.reboot'), 'kernel\n');
    writeFileSync(join(dir, 'probe'), ' '.repeat(4096));
    const target = join(root, 'kept');
    writeFileSync(target, 'not the run’s\n');
    symlinkSync(target, join(dir, 'link'));
    await removeChangesDir(dir);
    assert.equal(existsSync(dir), false);
    assert.equal(readFileSync(target, 'utf8'), 'not the run’s\n');
  });

  it('removes a dir a step made there, with what is in it', async () => {
    const dir = join(root, 'b.changes');
    mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(dir, 'tag.1'), '');
    writeFileSync(join(dir, 'sub', 'deeper', 'f'), 'x');
    await removeChangesDir(dir);
    assert.equal(existsSync(dir), false);
  });

  it('is done when the dir is gone already', async () => {
    await removeChangesDir(join(root, 'never-made.changes'));
    assert.equal(existsSync(join(root, 'never-made.changes')), false);
  });
});
