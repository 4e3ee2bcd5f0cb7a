// setting-types.ts: int bounds, parsed once for both the ini's defaults and product.set's values.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSettingType, parseSettingType, parseSettingValue, productEnvName } from '../../../src/config/setting-types.js';

describe('int(MIN..MAX)', () => {
  it('parses both bounds, one of them, negative ones; formats them back as written', () => {
    for (const [text, min, max, shown] of [
      ['int(1..100000)', 1, 100000, 'int(1..100000)'],
      ['int(0..)', 0, undefined, 'int(0..)'],
      ['int(..-1)', undefined, -1, 'int(..-1)'],
      ['int(-10..-10)', -10, -10, 'int(-10..-10)'],
      ['int( +2 .. 3 )', 2, 3, 'int(2..3)'],
    ] as const) {
      const type = parseSettingType(text);
      assert.deepEqual(type, { kind: 'int', min, max }, text);
      assert.equal(formatSettingType(type as never), shown);
    }
    assert.deepEqual(parseSettingType('int'), { kind: 'int' });
    assert.equal(formatSettingType({ kind: 'int' }), 'int');
  });

  it('refuses what is not bounds (null) and bounds the wrong way round (the reason)', () => {
    for (const text of ['int()', 'int(..)', 'int(1)', 'int(1...2)', 'int(a..b)', 'int(1.5..2)', 'int(1..2', 'integer(1..2)']) assert.equal(parseSettingType(text), null, text);
    assert.deepEqual(parseSettingType('int(5..1)'), { error: 'int(5..1): the lower bound 5 is above the upper bound 1' });
    assert.match((parseSettingType('int(1..99999999999999999)') as { error: string }).error, /must be integers of at most 15 digits/);
  });

  it('a value is checked against the bounds, inclusive, with what was expected', () => {
    const type = { kind: 'int', min: 1, max: 100000 } as const;
    assert.deepEqual(parseSettingValue(type, '1'), { ok: true, value: 1 });
    assert.deepEqual(parseSettingValue(type, '100000'), { ok: true, value: 100000 });
    assert.deepEqual(parseSettingValue(type, '-5'), { ok: false, expected: 'an integer from 1 to 100000' });
    assert.deepEqual(parseSettingValue(type, '100001'), { ok: false, expected: 'an integer from 1 to 100000' });
    assert.deepEqual(parseSettingValue({ kind: 'int', min: 0 }, '-1'), { ok: false, expected: 'an integer of at least 0' });
    assert.deepEqual(parseSettingValue({ kind: 'int', max: -1 }, '0'), { ok: false, expected: 'an integer of at most -1' });
    assert.deepEqual(parseSettingValue({ kind: 'int' }, '-5'), { ok: true, value: -5 });
    assert.deepEqual(parseSettingValue({ kind: 'int' }, 'x'), { ok: false, expected: 'an integer' });
  });
});

describe('productEnvName', () => {
  it('upper case, other characters as _: a setting and the version share one spelling', () => {
    assert.equal(productEnvName('web-app', 'max.conn'), 'BOOTSTRAP_WEB_APP_MAX_CONN');
    assert.equal(productEnvName('haproxy', 'version'), 'BOOTSTRAP_HAPROXY_VERSION');
  });
});
