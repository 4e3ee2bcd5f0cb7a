// Unit tests for src/pipeline/plan.ts: sortRunParts, the order steps run in, which must be
// `LANG=C sort -n`'s (the order os-refresh-config's dib-run-parts uses); and planPhases' format
// check, what a step's first bytes must be.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { tempDirEach } from '../../helpers/temp.js';
import { planPhases, sortRunParts } from '../../../src/pipeline/plan.js';

describe('sortRunParts', () => {
  it('orders by the leading number, not by bytes', () => {
    assert.deepEqual(sortRunParts(['10-b', '9-a', '2-c', '100-a']), ['2-c', '9-a', '10-b', '100-a']);
  });

  it('counts no number (and zero) as 0 and negative numbers below it', () => {
    assert.deepEqual(sortRunParts(['1-a', 'a', '-1-x', '0-z', '-10-y', '-']), ['-10-y', '-1-x', '-', '0-z', 'a', '1-a']);
  });

  it('ignores leading zeros and blanks for the number, then breaks ties by bytes', () => {
    assert.deepEqual(sortRunParts(['10-a', '9-y', '010-a', ' 5-x', '4-b']), ['4-b', ' 5-x', '9-y', '010-a', '10-a']);
  });

  it('compares numbers of any length exactly', () => {
    assert.deepEqual(sortRunParts(['100000000000000000001-a', '100000000000000000000-b', '99999999999999999999-c']), [
      '99999999999999999999-c',
      '100000000000000000000-b',
      '100000000000000000001-a',
    ]);
  });

  it('breaks ties by UTF-8 bytes, not UTF-16 code units', () => {
    // U+1F600 is F0 9F 98 80 in UTF-8 (after EF BF BD), but D83D in UTF-16 (before FFFD).
    assert.deepEqual(sortRunParts(['\u{1F600}', '\uFFFD']), ['\uFFFD', '\u{1F600}']);
    assert.deepEqual(sortRunParts(['b', 'B', 'a', '_']), ['B', '_', 'a', 'b']);
  });

  it('does not change its argument', () => {
    const names = ['2', '1'];
    sortRunParts(names);
    assert.deepEqual(names, ['2', '1']);
  });

  it('agrees with LANG=C sort -n on names without a decimal point', () => {
    const names = ['10-x', '1-x', '01-x', '001', '1', 'x', 'X', '-1', '-01-a', '-', '--1', '00', '0', '20_a', '20-a', '20.a', ' 3', '\t3', '2 ', 'é', 'e', '~', '9'];
    const sorted = execFileSync('sort', ['-n'], { input: names.join('\n') + '\n', env: { ...process.env, LANG: 'C', LC_ALL: 'C' } }).toString().split('\n').slice(0, -1);
    assert.deepEqual(sortRunParts(names), sorted);
  });
});

describe('planPhases: a step is a script (#!) or a program (ELF)', () => {
  const dir = tempDirEach('plan');
  beforeEach(() => mkdirSync(join(dir(), 'configure.d'), { mode: 0o755 }));

  const formatRefused = (files: Record<string, string | Buffer>, noShebang?: 'sh') => {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir(), 'configure.d', name), content, { mode: 0o755 });
    const plan = planPhases(dir(), noShebang ? { noShebang } : {});
    return { refused: plan.refused.filter((r) => r.kind === 'format').map((r) => r.path.slice(dir().length + 1)).sort(), viaSh: plan.viaSh };
  };

  it('takes #! (even alone) and ELF; refuses anything else, however short', () => {
    copyFileSync('/bin/true', join(dir(), 'configure.d', '10-elf'));
    const { refused } = formatRefused({
      '20-script': '#!/bin/sh\nexit 0\n',
      '21-bare': '#!',
      '30-hash': '#',
      '31-empty': '',
      '32-elf-cut': '\x7fEL',
      '33-elf-lower': '\x7felf',
      '34-bang-hash': '!#/bin/sh\n',
      '35-space': ' #!/bin/sh\n',
    });
    assert.deepEqual(refused, ['configure.d/30-hash', 'configure.d/31-empty', 'configure.d/32-elf-cut', 'configure.d/33-elf-lower', 'configure.d/34-bang-hash', 'configure.d/35-space']);
  });

  it('with no_shebang = sh, runs a file with no #! line through /bin/sh instead', () => {
    const { refused, viaSh } = formatRefused({ '10-plain': 'echo hi\n', '20-script': '#!/bin/sh\n' }, 'sh');
    assert.deepEqual(refused, []);
    assert.equal(viaSh.has(join(dir(), 'configure.d', '10-plain')), true);
    assert.equal(viaSh.has(join(dir(), 'configure.d', '20-script')), false);
  });
});
