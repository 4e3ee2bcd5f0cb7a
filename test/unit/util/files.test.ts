// util/files: removeFile is rm -f of one file (gone already is no error, anything else is);
// tryRemoveFile never throws.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { removeFile, tryRemoveFile } from '../../../src/util/files.js';

describe('util/files removeFile', () => {
  let dir = '';
  let file = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bootstrap-files-'));
    file = join(dir, 'f');
    writeFileSync(file, 'x');
    mkdirSync(join(dir, 'd'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('removes a file; one gone already (or its dir) is no error, as rm -f; a dir is one (EISDIR), and stays', () => {
    removeFile(file);
    assert.equal(existsSync(file), false);
    removeFile(file);
    removeFile(join(dir, 'nodir', 'f'));
    assert.throws(() => removeFile(join(dir, 'd')), { code: 'EISDIR' });
    assert.equal(existsSync(join(dir, 'd')), true);
  });

  it('tryRemoveFile: removes a file, and says nothing of one gone, a dir or a file it may not remove', () => {
    tryRemoveFile(file);
    assert.equal(existsSync(file), false);
    tryRemoveFile(file);
    tryRemoveFile(join(dir, 'd'));
    assert.equal(existsSync(join(dir, 'd')), true);
  });
});
