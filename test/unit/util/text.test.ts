// util/text: the one definition of a control character that labels, reasons, unit paths, a tree's
// VERSION line and error messages share.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dropControls, hasControls, showControls } from '../../../src/util/text.js';

const hostile = ['a\nb', 'a\rb', 'tab\there', 'esc\x1b[31m', 'del\x7f', 'csi\u009b31m', 'nel\u0085', 'ls\u2028', 'ps\u2029', 'nul\x00'];

describe('util/text', () => {
  it('hasControls: C0, DEL, C1 and the Unicode line separators; plain text and other Unicode pass', () => {
    for (const s of hostile) assert.equal(hasControls(s), true, JSON.stringify(s));
    for (const s of ['rollout-42/batch-2', 'kernel upgrade, ticket OPS-123', 'café ☕ 日本', '\u00a0nbsp']) assert.equal(hasControls(s), false, s);
  });

  it('dropControls leaves one plain line', () => {
    for (const s of hostile) assert.equal(hasControls(dropControls(s)), false, JSON.stringify(s));
    assert.equal(dropControls('v1.2\x1b[0m\u2028'), 'v1.2[0m');
  });

  it('showControls escapes every one visibly; multiline keeps newline and tab only', () => {
    assert.equal(showControls('a\x1b[31m\u009bb\u2028'), 'a\\x1b[31m\\x9bb\\u2028');
    assert.equal(showControls('a\nb\tc\rd', true), 'a\nb\tc\\x0dd');
    for (const s of hostile) assert.equal(hasControls(showControls(s)), false, JSON.stringify(s));
  });
});
