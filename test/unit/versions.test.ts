// Unit tests for src/versions.ts: the order upgrade uses to refuse a downgrade.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersions } from '../../src/versions.js';

const sign = (n: number) => Math.sign(n) + 0; // -0 → 0

describe('compareVersions', () => {
  const cases: Array<[string, string, -1 | 0 | 1]> = [
    ['1.0', '1.0', 0],
    ['2.10', '2.9', 1], // digit runs numerically, not by bytes
    ['1.4.1', '1.4', 1], // a longer version after its prefix
    ['1.0a', '1.0', 1],
    ['1.0~rc1', '1.0', -1], // ~ before anything, even the end
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~~', '1.0~', -1],
    ['1.0~', '1.0', -1],
    ['1.a', '1.1', -1], // a letter run before a digit run
    ['1.0rc1', '1.0rc10', -1], // digit runs inside a part
    ['1.0.beta', '1.0.alpha', 1], // letter runs by bytes
    ['1.0.B', '1.0.a', -1], // bytes: upper case first
    ['1-2', '1.2', 0], // . + _ - all separate the same way
    ['1_2', '1+2', 0],
    ['1.01', '1.1', 0], // leading zeros do not count
    ['1..2', '1.2', 0], // empty parts are dropped
    ['99999999999999999999.1', '99999999999999999998.9', 1], // beyond 2^53: compared exactly
    ['9007199254740993', '9007199254740992', 1],
    ['', '0', -1],
    ['', '', 0],
  ];
  for (const [a, b, want] of cases) {
    it(`${JSON.stringify(a)} vs ${JSON.stringify(b)} → ${want}`, () => {
      assert.equal(sign(compareVersions(a, b)), want);
      assert.equal(sign(compareVersions(b, a)), -want + 0, 'antisymmetric');
    });
  }

  it('sorts a list as people read it', () => {
    const shuffled = ['1.10', '1.0~rc1', '1.2', '1.0', '1.9.1', '1.0.1', '0.9', '1.9', '1.10~beta'];
    assert.deepEqual([...shuffled].sort(compareVersions), ['0.9', '1.0~rc1', '1.0', '1.0.1', '1.2', '1.9', '1.9.1', '1.10~beta', '1.10']);
  });

  it('is transitive over every triple of a mixed list', () => {
    const vs = ['1', '1.0', '1.0~a', '1.0a', '1.a', '2', '10', '1-1', '1.01', '1.1~', '1.1.0', 'a', '~', ''];
    for (const a of vs) for (const b of vs) for (const c of vs) {
      if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) assert.ok(compareVersions(a, c) <= 0, `${a} <= ${b} <= ${c}`);
    }
  });

  // Found while writing these tests: two digit runs equal as numbers but not as text ('01' and
  // '1') ended the comparison with 0, so an upgrade from 1.1.5 to 1.01.0 was not refused as a
  // downgrade.
  it('compares past digit runs equal only as numbers (01 vs 1)', () => {
    assert.equal(sign(compareVersions('1.01.0', '1.1.5')), -1);
    assert.equal(sign(compareVersions('1.01', '1.1~')), 1);
  });
});
