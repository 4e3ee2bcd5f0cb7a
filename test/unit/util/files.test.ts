// util/files: removeFile is rm -f of one file (gone already is no error, anything else is);
// tryRemoveFile never throws.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { tempDirEach } from '../../helpers/temp.js';
import { namesIn, removeFile, stateDirNames, tryRemoveFile } from '../../../src/util/files.js';
import { StateError } from '../../../src/errors.js';

describe('util/files removeFile', () => {
  const dir = tempDirEach('files');
  let file = '';
  beforeEach(() => {
    file = join(dir(), 'f');
    writeFileSync(file, 'x');
    mkdirSync(join(dir(), 'd'));
  });

  it('removes a file; one gone already (or its dir) is no error, as rm -f; a dir is one (EISDIR), and stays', () => {
    removeFile(file);
    assert.equal(existsSync(file), false);
    removeFile(file);
    removeFile(join(dir(), 'nodir', 'f'));
    assert.throws(() => removeFile(join(dir(), 'd')), { code: 'EISDIR' });
    assert.equal(existsSync(join(dir(), 'd')), true);
  });

  it('tryRemoveFile: removes a file, and says nothing of one gone, a dir or a file it may not remove', () => {
    tryRemoveFile(file);
    assert.equal(existsSync(file), false);
    tryRemoveFile(file);
    tryRemoveFile(join(dir(), 'd'));
    assert.equal(existsSync(join(dir(), 'd')), true);
  });
});

describe('util/files listing a dir', () => {
  const dir = tempDirEach('names');

  it('namesIn (a sweep) takes a dir that is not there, or not a dir, as empty; stateDirNames takes only one not there yet as empty', () => {
    writeFileSync(join(dir(), 'f'), 'x');
    mkdirSync(join(dir(), 'd'));
    assert.deepEqual([namesIn(dir()).sort(), stateDirNames(dir()).sort()], [['d', 'f'], ['d', 'f']]);
    assert.deepEqual([namesIn(join(dir(), 'none')), stateDirNames(join(dir(), 'none'))], [[], []]);
    assert.deepEqual(namesIn(join(dir(), 'f')), []);
    assert.throws(() => stateDirNames(join(dir(), 'f')), (err: unknown) => err instanceof StateError && /^cannot read .*\/f: /.test(err.message));
  });
});
