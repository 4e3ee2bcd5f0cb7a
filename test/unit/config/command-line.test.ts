// Unit tests for src/config/command-line.ts's splitCommand: an exec check's command line, split
// into words like a shell would, with no expansion and no shell syntax.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitCommand } from '../../../src/config/command-line.js';
import { ConfigError, ExitCode } from '../../../src/errors.js';

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
