// Unit tests for src/cli/argv.ts: the command line read without yargs. Its one promise: for any
// line it reads, it gives exactly what yargs gives (cli.ts's parseWithYargs, the reference); any
// other line it leaves to yargs. Checked over every command with each of its options written
// every way, the global ones, positionals, and lines yargs refuses.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { declaredOptions, parsePlain } from '../../../src/cli/argv.js';
import { parseWithYargs } from '../../../src/cli/cli.js';
import { commands } from '../../../src/cli/commands/index.js';
import { commandName, globalKeys, type CliIo } from '../../../src/cli/context.js';

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
const io: CliIo = { stdout: sink(), stderr: sink(), env: {} };

/** Each option of `options` written the ways people (and mistakes) write it. */
function optionForms(key: string, type: string | undefined, choices: readonly string[] | undefined): string[][] {
  const flag = `--${key}`;
  const value = choices?.[0] ?? (type === 'number' ? '30' : 'a,b');
  return [
    [flag],
    [flag, value],
    [`${flag}=${value}`],
    [`${flag}=`],
    [`${flag}=true`],
    [flag, '-q'],
    [flag, '--json'],
    [flag, value, flag, value],
    [flag, 'x y'],
    [`${flag}=-x`],
    [flag, '1.5'],
    [flag, '1e3'],
    [flag, 'abc'],
    [flag, '0x10'],
    [flag, 'loud'],
    [flag, 'true'],
    [flag, 'false'],
    [`${flag}="${value}"`],
    [`${flag}='${value}'`],
    [flag, `"${value}"`],
    [`${flag}="`],
    [`-${key[0]}`, value],
    [`-${key[0]}`],
  ];
}

const globalForms = [
  [],
  ['--json'],
  ['-q'],
  ['-v'],
  ['-q', '--quiet'],
  ['-qv'],
  ['-q', '-v', '--json'],
  ['--config', '/etc/x.ini', '--state-dir=/tmp/s', '--phases-dir', 'p'],
  ['--log-level', 'debug'],
  ['--log-level=warn'],
  ['--log-level', 'loud'],
  ['--json', '--json'],
  ['--bogus'],
  ['-x'],
  ['--q'],
  ['--no-json'],
  ['--Json'],
  ['--callbackUrl=x'],
  ['--', 'x'],
  ['--__proto__'],
  ['--constructor'],
  ['--_'],
  ['--_', 'x'],
  ['-q', 'true'],
  ['-v', 'false'],
  ['--json', 'false'],
  ['-c', 'x.ini'],
  ['-s', 'dir'],
  ['-j'],
];

const positionalForms = [['haproxy'], ['haproxy.maxconn=10'], ['a', 'b=c=d'], ['10'], ['0x10'], ['1e3'], ['-1'], ['.5'], ['true'], ['false'], ['x y'], ['-'], ['é=ü'], ['"a"'], ["'a.b=c'"], ['a="b"'], ['']];

function corpus(name: string, options: ReadonlyMap<string, { type?: string; choices?: readonly string[] }>): string[][] {
  const own = [...options].filter(([k]) => !globalKeys.includes(k));
  const lines: string[][] = [];
  for (const g of globalForms) lines.push([name, ...g], [...g, name]);
  for (const p of positionalForms) lines.push([name, ...p], [name, ...p, '--json'], ['--json', name, ...p]);
  for (const [key, spec] of [...options]) for (const f of optionForms(key, spec.type, spec.choices)) lines.push([name, ...f], [name, ...f, 'word']);
  for (let i = 0; i + 1 < own.length; i++) lines.push([name, `--${own[i]![0]}`, `--${own[i + 1]![0]}`, '-q']);
  return lines;
}

describe('argv: the command line without yargs', () => {
  it('gives what yargs gives for every line it reads, and leaves to yargs every line yargs refuses', async () => {
    let read = 0;
    let total = 0;
    for (const command of commands) {
      const name = commandName(command);
      const options = declaredOptions(command.builder);
      if (!options) continue;
      for (const argv of corpus(name, options)) {
        total++;
        const plain = parsePlain(argv, options);
        let reference: unknown;
        try {
          reference = await parseWithYargs(command, argv, io);
        } catch (err) {
          assert.equal(plain, undefined, `${argv.join(' ')}: yargs refuses it (${(err as Error).message}) but argv.ts read it`);
          continue;
        }
        if (plain === undefined) continue;
        read++;
        assert.deepEqual(plain, reference, argv.join(' '));
      }
    }
    // Not vacuous: most lines of the corpus are read here, and every command but completion's.
    assert.ok(read > 400 && total > 2000, `read ${read} of ${total}`);
  });

  it('reads the lines that run every few minutes (so they never build yargs)', () => {
    const byName = new Map(commands.map((c) => [commandName(c), c]));
    const lines = [
      ['product.get', '--json', '--config', '/etc/bootstrap/bootstrap.ini', '--state-dir', '/var/bootstrap'],
      ['server.refresh', '-q'],
      ['server.refresh', '--wait=', '--label', 'r1', '--callback-url', 'https://p.example/cb'],
      ['server.status', '--check', '--max-age', '35m'],
      ['heartbeat.checkup', '--report', '--json'],
      ['product.set', 'haproxy.maxconn=4096', '--apply'],
      ['server.refresh', '--timeout', '600'],
    ];
    for (const argv of lines) {
      const options = declaredOptions(byName.get(argv[0]!)!.builder);
      assert.ok(options, argv[0]);
      assert.notEqual(parsePlain(argv, options), undefined, argv.join(' '));
    }
  });

  it('leaves to yargs a command whose builder asks yargs for more than options (completion: an array option)', () => {
    const completion = commands.find((c) => commandName(c) === 'completion')!;
    assert.equal(declaredOptions(completion.builder), undefined);
    assert.equal(declaredOptions((y) => y.option('n', { type: 'number', default: 3 })), undefined, 'a default');
    assert.equal(declaredOptions((y) => y.option('n', { type: 'string' }).demandCommand(1)), undefined, 'another yargs method');
    assert.equal(declaredOptions((y) => y.option('json', { type: 'string' })), undefined, 'a global option declared again');
    assert.ok(declaredOptions(undefined)?.has('json'), 'no builder: the global options');
  });
});
