// state/atomic: a small file replaced whole or not at all, with exactly the mode asked for, and
// no temporary file left behind whatever step fails (the calls are synchronous; the hooks are
// the tests' seam between them).
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDirEach } from '../../helpers/temp.js';
import { tempPathFor, writeFileAtomic, writeJsonAtomic } from '../../../src/state/atomic.js';

describe('state/atomic', () => {
  const dir = tempDirEach('atomic');

  it('writes the bytes with exactly the mode asked for, whatever the umask, durable or not', async () => {
    const old = process.umask(0o077);
    try {
      for (const [name, durable] of [['a', true], ['b', false]] as const) {
        const file = join(dir(), name);
        await writeFileAtomic(file, 'one\n', 0o640, { durable });
        assert.equal(readFileSync(file, 'utf8'), 'one\n');
        assert.equal(statSync(file).mode & 0o777, 0o640);
      }
    } finally {
      process.umask(old);
    }
    await writeJsonAtomic(join(dir(), 'c.json'), { x: 1 });
    assert.deepEqual(JSON.parse(readFileSync(join(dir(), 'c.json'), 'utf8')), { x: 1 });
    assert.equal(statSync(join(dir(), 'c.json')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir()).sort(), ['a', 'b', 'c.json'], 'no temporary file left');
  });

  it('replaces a file whole: until the rename the old bytes are there; after it the new ones', async () => {
    const file = join(dir(), 'state.json');
    writeFileSync(file, 'old');
    const seen: string[] = [];
    await writeFileAtomic(file, 'new', 0o600, { beforeStep: () => void seen.push(readFileSync(file, 'utf8')) });
    assert.deepEqual(seen, ['old', 'old', 'old', 'old']);
    assert.equal(readFileSync(file, 'utf8'), 'new');
  });

  for (const step of ['open', 'write', 'fsync', 'rename'] as const) {
    it(`a failure before its ${step} leaves the old file as it was and no temporary file`, async () => {
      const file = join(dir(), 'state.json');
      writeFileSync(file, 'old');
      const full = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      const write = writeFileAtomic(file, 'new', 0o600, {
        beforeStep: (s) => {
          if (s === step) throw full;
        },
      });
      await assert.rejects(write, full);
      assert.equal(readFileSync(file, 'utf8'), 'old');
      assert.deepEqual(readdirSync(dir()), ['state.json']);
    });
  }

  it('an error of the file system itself is thrown as it is (its code kept), nothing left behind', async () => {
    await assert.rejects(writeFileAtomic(join(dir(), 'missing', 'x'), 'new'), { code: 'ENOENT' });
    writeFileSync(join(dir(), 'file'), '');
    await assert.rejects(writeFileAtomic(join(dir(), 'file', 'x'), 'new'), { code: 'ENOTDIR' });
    // At the rename, the temporary file written: a dir in the target's place.
    mkdirSync(join(dir(), 'target'));
    await assert.rejects(writeFileAtomic(join(dir(), 'target'), 'new'), { code: 'EISDIR' });
    assert.deepEqual(readdirSync(dir()).sort(), ['file', 'target']);
  });

  it('a durable write leaves the event loop its turns while it syncs (its fsyncs are not synchronous): timers and signals are served', async () => {
    let turned = false;
    setImmediate(() => (turned = true));
    await writeFileAtomic(join(dir(), 'state.json'), 'x');
    assert.equal(turned, true);
  });

  it('names its temporary file beside the target, hidden, unique, never the target\'s own pattern', () => {
    const a = tempPathFor(join(dir(), 'state.json'));
    const b = tempPathFor(join(dir(), 'state.json'));
    assert.notEqual(a, b);
    assert.match(a, new RegExp(`^${dir()}/\\.state\\.json\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
  });
});
