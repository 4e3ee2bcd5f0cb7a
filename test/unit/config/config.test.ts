// Unit tests for src/config/config.ts's parseDuration (the rest of the config is tested through
// parseConfig in test/config.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxDurationMs, parseDuration } from '../../../src/config/config.js';

describe('parseDuration', () => {
  const good: Array<[string, number]> = [
    ['90', 90_000], // bare seconds
    ['1.5', 1_500],
    ['0', 0],
    ['30s', 30_000],
    ['30m', 1_800_000],
    ['4h', 14_400_000],
    ['2d', 172_800_000],
    [' 30 m ', 1_800_000], // blanks around and before the unit
    ['0.0004', 0], // rounded to the millisecond
    ['0.0015', 2],
    ['24d', maxDurationMs], // the caller bounds it; the parser does not
  ];
  for (const [text, ms] of good) it(`${JSON.stringify(text)} → ${ms} ms`, () => assert.equal(parseDuration(text), ms));

  const bad = ['', ' ', '-1', '-1s', '+1', '1.5.2', '.5', '5.', '30x', '30S', '1e3', '1 h 2', 's', '1ms', '0x10', `1${'0'.repeat(400)}`];
  for (const text of bad) it(`${JSON.stringify(text.length > 20 ? `${text.slice(0, 8)}…` : text)} → null`, () => assert.equal(parseDuration(text), null));
});
