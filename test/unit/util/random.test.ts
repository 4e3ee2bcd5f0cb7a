// util/random: the random names, run ids and launcher nonces of a run, from /dev/urandom, or from
// node:crypto where that is not the kernel's device. (That a run takes them from /dev/urandom, not
// crypto, is checked in test/cli/startup.test.ts: a provision does not load crypto.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { randomHex } from '../../../src/util/random.js';

describe('util/random', () => {
  it('gives `bytes` random bytes as lowercase hex, a new value each time', () => {
    for (const bytes of [1, 3, 4, 8, 32]) assert.match(randomHex(bytes), new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
    const seen = new Set(Array.from({ length: 1000 }, () => randomHex(8)));
    assert.equal(seen.size, 1000);
    // Every hex digit shows up: not a constant or a counter.
    assert.equal(new Set([...seen].join('')).size, 16);
  });

  it("falls back to crypto for anything but the kernel's device: missing, a dir, a file, /dev/zero, a FIFO (no hang)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-random-'));
    try {
      // A file long enough to give the bytes: read, it would give the same value every time.
      const file = join(dir, 'file');
      writeFileSync(file, randomBytes(64));
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      for (const source of [join(dir, 'missing'), dir, file, '/dev/zero', fifo]) {
        const values = new Set(Array.from({ length: 50 }, () => randomHex(8, source)));
        assert.equal(values.size, 50, source);
        for (const v of values) assert.match(v, /^[0-9a-f]{16}$/, source);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
