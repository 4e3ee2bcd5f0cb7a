// Unit tests for src/metrics/render.ts: the exposition text Prometheus' own parser (promtool)
// reads back, whatever a label value holds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { escapeLabelValue, formatValue, renderFamilies, type Family } from '../../../src/metrics/render.js';

const family = (name: string, samples: Family['samples'], help = 'h'): Family => ({ name, help, type: 'gauge', samples });

describe('metrics/render', () => {
  it('label values: backslash, double quote and line feed escaped; promtool reads the value back whole', () => {
    const nasty = 'a\\b "c"\nd} e=1';
    assert.equal(escapeLabelValue(nasty), 'a\\\\b \\"c\\"\\nd} e=1');
    const text = renderFamilies([family('bootstrap_x', [{ labels: { check: nasty }, value: 1 }], 'help with \\ and\nnewline')]);
    assert.equal(text, '# HELP bootstrap_x help with \\\\ and\\nnewline\n# TYPE bootstrap_x gauge\nbootstrap_x{check="a\\\\b \\"c\\"\\nd} e=1"} 1\n');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  it('a long label value is bounded', () => {
    assert.equal(escapeLabelValue('x'.repeat(10_000)).length, 201);
  });

  it('sorted and stable: families by name, samples by labels, whatever order they came in', () => {
    const a = family('bootstrap_b', [
      { labels: { result: 'z' }, value: 2 },
      { labels: { result: 'a' }, value: 1 },
    ]);
    const b = family('bootstrap_a', [{ value: 0.5 }]);
    const text = renderFamilies([a, b]);
    assert.equal(text, renderFamilies([b, { ...a, samples: [...a.samples].reverse() }]));
    assert.deepEqual(
      text.split('\n').filter((l) => !l.startsWith('#')),
      ['bootstrap_a 0.5', 'bootstrap_b{result="a"} 1', 'bootstrap_b{result="z"} 2', ''],
    );
  });

  it('values: no timestamps; non-finite values in the spelling Go parses', () => {
    assert.deepEqual([NaN, Infinity, -Infinity, 1796455746.735, 0].map(formatValue), ['NaN', '+Inf', '-Inf', '1796455746.735', '0']);
    assert.equal(renderFamilies([]), '');
  });
});
