// util/random: the random names, run ids and launcher nonces of a run, from /dev/urandom, or from
// node:crypto where that cannot be read.
import assert from 'node:assert/strict';
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

  it('falls back to crypto when its source cannot be read or is short', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-random-'));
    try {
      const short = join(dir, 'short');
      writeFileSync(short, 'ab');
      for (const source of [join(dir, 'missing'), dir, short]) {
        const values = new Set(Array.from({ length: 50 }, () => randomHex(8, source)));
        assert.equal(values.size, 50, source);
        for (const v of values) assert.match(v, /^[0-9a-f]{16}$/, source);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
