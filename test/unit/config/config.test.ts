// Unit tests for src/config/config.ts's parseDuration and splitCommand (the rest of the config
// is tested through parseConfig in test/config.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxDurationMs, parseDuration, splitCommand } from '../../../src/config/config.js';
import { ConfigError, ExitCode } from '../../../src/errors.js';

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

describe('splitCommand', () => {
  const split = (command: string) => splitCommand(command, 'heartbeat disk');
  const cases: Array<[string, string[]]> = [
    ['df -P /', ['df', '-P', '/']],
    ['  df \t-P\n/  ', ['df', '-P', '/']],
    [`sh -c 'echo $HOME | wc -l'`, ['sh', '-c', 'echo $HOME | wc -l']], // single quotes keep everything
    [`echo "a \\"b\\" \\\\ c"`, ['echo', 'a "b" \\ c']], // in double quotes \\ and \" escape
    [`echo "a\\n"`, ['echo', 'a\\n']], // and any other backslash stays
    [`prog '' x ""`, ['prog', '', 'x', '']], // empty quotes are a word
    [`a'b'"c"d`, ['abcd']], // quoted pieces join
    ['a\\ b c', ['a b', 'c']], // a backslash escapes a blank
    ['ls \\*', ['ls', '*']], // and a glob character
    ['trail\\', ['trail\\']], // a final backslash is kept
  ];
  for (const [command, words] of cases) it(JSON.stringify(command), () => assert.deepEqual(split(command), words));

  function refuses(command: string, message: RegExp, hint?: RegExp): void {
    assert.throws(
      () => split(command),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        assert.equal(err.exitCode, ExitCode.config);
        assert.match(err.message, message);
        if (hint) assert.match(err.hint ?? '', hint);
        return true;
      },
    );
  }

  it('refuses an unterminated quote', () => {
    refuses(`echo 'abc`, /^\[heartbeat disk\] command: unterminated ' quote$/);
    refuses(`echo "a\\"`, /unterminated " quote/);
  });

  it('refuses shell syntax outside quotes, and says how to run it with a shell', () => {
    refuses('df -P / | tail -1', /^\[heartbeat disk\] command: '\|' is shell syntax, and the command runs without a shell$/, /^write command = sh -c "df -P \/ \| tail -1" to run it with one$/);
    for (const c of ['&', ';', '<', '>', '$', '`', '*', '?', '(', ')', '{', '}']) refuses(`prog a${c}b`, new RegExp(`'\\${c}' is shell syntax`));
  });

  it('refuses a command with no words', () => {
    refuses('', /^\[heartbeat disk\] command: missing$/, /PROGRAM ARGS/);
    refuses(' \t ', /command: missing/);
  });
});
