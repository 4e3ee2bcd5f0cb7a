// Issue #23's papercuts, black-box through bin/bootstrap: bounded ints, no_shebang = bash, each
// product's version in the steps' environment.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json } from '../helpers/cli.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';

/** iniWith with haproxy's settings replaced by `settings` (deepfiler stays). */
function iniSettings(settings: string): string {
  return iniWith().replace(/\[product\.haproxy\.settings\]\n(?:.+\n)+/, `[product.haproxy.settings]\n${settings}\n`);
}

describe('bounded int settings: int(MIN..MAX), int(MIN..), int(..MAX)', () => {
  it(
    'product.set outside the bounds is refused (65) naming them; product.get and completion show them; plain int stays unbounded',
    withBox(iniSettings('maxconn = int(1..100000):4096\noffset = int(-10..)\nfloor = int(..-1)\nplain = int'), async (box) => {
      const bad = await box.run(['product.set', 'haproxy.maxconn=-5']);
      assert.equal(bad.code, 65, bad.stderr);
      assert.match(bad.stderr, /haproxy\.maxconn: value '-5' is not an integer from 1 to 100000/);
      assert.match(bad.stderr, /of type int\(1\.\.100000\)/);
      for (const [pair, code] of [['haproxy.maxconn=100001', 65], ['haproxy.offset=-11', 65], ['haproxy.floor=0', 65], ['haproxy.maxconn=100000', 0], ['haproxy.offset=-10', 0], ['haproxy.floor=-1', 0], ['haproxy.plain=-5', 0]] as const) {
        const r = await box.run(['product.set', pair]);
        assert.equal(r.code, code, `${pair}: ${r.stderr}`);
      }
      const get = await box.run(['product.get', 'haproxy', '--json']);
      const types = Object.fromEntries(json(get).products[0].settings.map((s: any) => [s.name, [s.type, s.value]]));
      assert.deepEqual(types, { floor: ['int(..-1)', -1], maxconn: ['int(1..100000)', 100000], offset: ['int(-10..)', -10], plain: ['int', -5] });
      const human = await box.run(['product.get', 'haproxy', '--show-origin']);
      assert.match(human.stdout, /maxconn = 100000\t\(set, int\(1\.\.100000\)\)/);
      assert.equal((await box.run(['completion', '--words', 'values', 'haproxy.maxconn'])).stdout, '1\n100000\n');
      assert.equal((await box.run(['completion', '--words', 'values', 'haproxy.floor'])).stdout, '-1\n');
    }),
  );

  it(
    'bounds MIN > MAX, a default outside them, or no bound at all: 78 naming the section and key',
    withBox(iniWith(), async (box) => {
      const cases: [string, RegExp][] = [
        ['maxconn = int(10..1)', /\[product\.haproxy\.settings\] maxconn: int\(10\.\.1\): the lower bound 10 is above the upper bound 1/],
        ['maxconn = int(1..10):50', /\[product\.haproxy\.settings\] maxconn: default '50' is not an integer from 1 to 10/],
        ['maxconn = int(..)', /\[product\.haproxy\.settings\] maxconn: 'int\(\.\.\)' is not a setting type/],
        ['maxconn = int(1.5..2)', /\[product\.haproxy\.settings\] maxconn: 'int\(1\.5\.\.2\)' is not a setting type/],
      ];
      for (const [line, message] of cases) {
        writeFileSync(box.config, iniSettings(line));
        const r = await box.run(['product.get']);
        assert.equal(r.code, 78, `${line}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
    }),
  );
});

describe('[phases] no_shebang = bash', () => {
  const bashOnly = 'arr=(a b)\nif [[ ${arr[1]} == b ]]; then echo "bash ran $0" >> "$LOG"; fi\n';

  it(
    'a file with no #! line using bash syntax fails under sh, runs under bash; --dry-run checks it with bash -n',
    withBox(iniWith({ no_shebang: 'sh' }), async (box, log) => {
      const step = join(box.phasesDir, 'configure.d', '10-orc-style');
      script(step, '#!/bin/sh\n');
      writeFileSync(step, bashOnly);
      const dryBySh = json(await box.run(['server.provision', '--dry-run', '--json']));
      assert.deepEqual(dryBySh.syntax.map((s: any) => [s.step, s.interpreter, s.ok]), [['10-orc-style', 'sh', false]]);
      const bySh = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(bySh.code, 1, bySh.stderr);
      assert.deepEqual(readLines(log), []);
      writeFileSync(box.config, iniWith({ no_shebang: 'bash' }));
      // An explorer with no #! line runs under bash too: its fact reaches the step.
      const explorer = join(box.phasesDir, 'explorer.d', '50-shellish');
      script(explorer, '#!/bin/sh\n');
      writeFileSync(explorer, 'arr=(x y)\necho "${arr[1]}"\n');
      writeFileSync(step, `${bashOnly}echo "fact $BOOTSTRAP_FACT_SHELLISH" >> "$LOG"\n`);
      // And its condition (NAME.if), also with no #! line: bash's [[ ]] decides that it runs.
      script(`${step}.if`, '#!/bin/sh\n');
      writeFileSync(`${step}.if`, '[[ -n "$BOOTSTRAP_ACTION" ]]\n');
      const dry = await box.run(['server.provision', '--dry-run', '--json']);
      assert.equal(dry.code, 0, dry.stdout);
      assert.deepEqual(json(dry).syntax.map((s: any) => [s.step, s.interpreter, s.ok, s.message]), [['10-orc-style', 'bash', true, 'syntax ok']]);
      const byBash = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(byBash.code, 0, byBash.stderr);
      assert.deepEqual(readLines(log), [`bash ran ${step}`, 'fact y']);
    }),
  );

  it(
    'the refusal hint names bash as what os-refresh-config does; an unknown value is 78 listing the three',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-x'), '#!/bin/sh\n');
      writeFileSync(join(box.phasesDir, 'configure.d', '10-x'), 'true\n');
      const r = await box.run(['phases.list']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /no_shebang = bash to run such files with bash as os-refresh-config does/);
      assert.doesNotMatch(r.stderr, /no_shebang = sh to run such files with \/bin\/sh as os-refresh-config/);
      writeFileSync(box.config, iniWith({ no_shebang: 'dash' }));
      const bad = await box.run(['phases.list']);
      assert.equal(bad.code, 78);
      assert.match(bad.stderr, /\[phases\] no_shebang: 'dash' is not one of refuse, sh, bash/);
    }),
  );
});

describe('BOOTSTRAP_<PRODUCT>_VERSION', () => {
  it(
    "every enabled product's version on provision, refresh, mode and upgrade (the target for the upgraded product)",
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-versions'), 'echo "$BOOTSTRAP_ACTION haproxy=${BOOTSTRAP_HAPROXY_VERSION-unset} deepfiler=${BOOTSTRAP_DEEPFILER_VERSION-unset}" >> "$LOG"');
      const env = { LOG: log };
      for (const args of [['server.provision'], ['server.refresh'], ['server.mode', 'active'], ['product.upgrade', 'haproxy', '--to', '2.8'], ['server.refresh']]) {
        const r = await box.run(args, { env });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      assert.deepEqual(readLines(log), [
        'provision haproxy=2.6 deepfiler=1.4.0',
        'refresh haproxy=2.6 deepfiler=1.4.0',
        'mode haproxy=2.6 deepfiler=1.4.0',
        'upgrade haproxy=2.8 deepfiler=1.4.0',
        'refresh haproxy=2.8 deepfiler=1.4.0',
      ]);
    }),
  );

  it(
    'a setting named version, or two names that give one variable, are refused (78) naming them',
    withBox(iniWith(), async (box) => {
      writeFileSync(box.config, iniSettings('version = string'));
      const r = await box.run(['product.get']);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /\[product\.haproxy\.settings\] version: a setting may not be named version: steps get the product's version as BOOTSTRAP_HAPROXY_VERSION/);
      writeFileSync(box.config, `${iniWith()}\n[product.haproxy_stats]\nversion = 1\n`.replace('[product.haproxy.settings]\n', '[product.haproxy.settings]\nstats_version = string\n'));
      const clash = await box.run(['product.get']);
      assert.equal(clash.code, 78, clash.stderr);
      assert.match(clash.stderr, /BOOTSTRAP_HAPROXY_STATS_VERSION/);
    }),
  );
});

describe('help shows how commands are called', () => {
  it(
    'a positional is listed as an argument, never also as a --flag; completion is `completion [--shell zsh]`',
    withBox(iniWith(), async (box) => {
      const positionals: [string, string][] = [['product.get', 'path'], ['product.set', 'pairs'], ['product.unset', 'names'], ['server.mode', 'mode'], ['runs.show', 'id'], ['heartbeat.get', 'names']];
      for (const [command, name] of positionals) {
        const r = await box.run([command, '--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Positionals:\\n  ${name} `, 'm'), command);
        assert.doesNotMatch(r.stdout, new RegExp(`--${name}\\b`), command);
      }
      const top = await box.run(['--help']);
      assert.match(top.stdout, /^  bootstrap completion {2,}print a completion script/m);
      assert.doesNotMatch(top.stdout, /completion \[kind\]/);
      const own = await box.run(['completion', '--help']);
      assert.match(own.stdout, /^bootstrap completion\n/);
      assert.doesNotMatch(own.stdout, /--words|kind|Positionals/);
      // What the script calls still answers; a stray word is a usage error.
      assert.equal((await box.run(['completion', '--words', 'values', 'deepfiler.log_level'])).stdout, 'debug\ninfo\nwarn\nerror\n');
      assert.equal((await box.run(['completion', 'values'])).code, 64);
    }),
  );
});

describe('phases.list without a bootstrap.ini', () => {
  it(
    'lists the tree under the defaults and says so; a run still needs the ini (66); a broken ini is still 78',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-ok'), 'true');
      const missing = join(box.dir, 'none.ini');
      const r = await box.run(['phases.list', '--config', missing]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split('\n')[0], `no ${missing}: the plan under the defaults (as with [server] alone: no_shebang = refuse, allow_insecure = false)`);
      assert.match(r.stdout, new RegExp(`^phases dir: ${box.phasesDir}$`, 'm'));
      assert.match(r.stdout, /^ {4}1\. 10-ok$/m);
      const fromFlag = json(await box.run(['phases.list', '--json', '--config', missing, '--phases-dir', join(box.dir, 'elsewhere')], { env: { BOOTSTRAP_PHASES_DIR: '' } }));
      assert.equal(fromFlag.base_dir, join(box.dir, 'elsewhere'));
      assert.match(fromFlag.defaults, /^no .*none\.ini: the plan under the defaults/);
      // The defaults' verdict: a file with no #! line is refused, as a run would refuse it.
      writeFileSync(join(box.phasesDir, 'configure.d', '20-orc'), 'true\n', { mode: 0o755 });
      const refused = await box.run(['phases.list', '--config', missing]);
      assert.equal(refused.code, 78);
      assert.match(refused.stderr, /20-orc: has no #! line/);
      assert.equal((await box.run(['server.provision', '--config', missing])).code, 66);
      writeFileSync(box.config, '[bogus]\n');
      assert.equal((await box.run(['phases.list'])).code, 78);
    }),
  );
});
