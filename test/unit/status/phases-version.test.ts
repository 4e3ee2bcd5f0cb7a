// Unit tests for phasesVersion (src/status/report.ts): what server.status shows as the phases
// tree's version, read from VERSION in the tree (fleet/install.yml writes it).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { phasesVersion } from '../../../src/status/report.js';

describe('phasesVersion: VERSION in the phases tree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-phases-version-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const tree = (name: string, version?: string) => {
    const d = join(dir, name);
    mkdirSync(d);
    if (version !== undefined) writeFileSync(join(d, 'VERSION'), version);
    return d;
  };

  it('its first line, trimmed; none, an empty one or a missing tree: null', async () => {
    assert.equal(await phasesVersion(tree('git', '0123abcd-dirty\nsecond line\n')), '0123abcd-dirty');
    assert.equal(await phasesVersion(tree('spaces', '  v1.2  \r\n')), 'v1.2');
    assert.equal(await phasesVersion(tree('none')), null);
    assert.equal(await phasesVersion(tree('empty', '\n')), null);
    assert.equal(await phasesVersion(join(dir, 'no-such-tree')), null);
  });

  it('control characters dropped, at most 200 characters; a symlink is not followed', async () => {
    assert.equal(await phasesVersion(tree('ctl', 'v1\x1b[31m\x7f\x9b2')), 'v1[31m2');
    assert.equal((await phasesVersion(tree('long', 'x'.repeat(500))))!.length, 200);
    const d = tree('link');
    writeFileSync(join(dir, 'elsewhere'), 'secret\n');
    symlinkSync(join(dir, 'elsewhere'), join(d, 'VERSION'));
    assert.equal(await phasesVersion(d), null);
  });
});
