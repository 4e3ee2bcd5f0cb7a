import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bin, collect, exampleIni, json, sandbox } from '../helpers/cli.js';
import { iniWith } from '../helpers/phases.js';

describe('CLI', () => {
  const box = sandbox();
  after(() => box.cleanup());

  it('--version prints the package version', async () => {
    const r = await box.run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('--help lists every command and the exit codes', async () => {
    const r = await box.run(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['product.get', 'product.set', 'product.unset', 'server.mode', 'server.status', 'completion']) assert.match(r.stdout, new RegExp(c.replace('.', '\\.')));
    assert.match(r.stdout, /64 usage/);
  });

  it('every command has --help with an example', async () => {
    for (const c of ['product.get', 'product.set', 'product.unset', 'server.mode', 'server.status', 'completion']) {
      const r = await box.run([c, '--help']);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, /Examples:\n\s+bootstrap /, c);
    }
  });

  for (const [args, pattern] of [
    [['nope'], /^bootstrap: unknown command 'nope' \(commands: /],
    [['product.gte'], /did you mean product\.get\?/],
    [[], /^bootstrap: name a command/],
    [['product.get', '--bogus'], /^bootstrap: unknown flag --bogus/],
    [['product.get', 'a', 'b'], /^bootstrap: unexpected argument 'b'/],
    // yargs' own keys are no flags (`--_ x` replaced the list of words: a crash, 70).
    [['product.get', '--_', 'x'], /^bootstrap: unknown flag --_ \(see bootstrap product\.get --help\)$/m],
    [['server.refresh', '--$0=x'], /^bootstrap: unknown flag --\$0 /],
    [['product.get', '--__proto__', 'x'], /^bootstrap: unknown flag --__proto__ \(see bootstrap product\.get --help\)$/m],
    [['product.get', '--__proto__=1'], /^bootstrap: unknown flag --__proto__ \(/],
    // A boolean flag followed by `false` is yargs' to read (it takes the word as the value).
    [['runs.list', '--wide', 'false', 'x'], /^bootstrap: unexpected argument 'x'/],
    [['server.mode', 'x', '--wait=soon'], /--wait=soon: not a number of seconds/],
  ] as [string[], RegExp][]) {
    it(`usage error: ${args.join(' ') || '(nothing)'} → 64`, async () => {
      const r = await box.run(args);
      assert.equal(r.code, 64, r.stderr);
      assert.match(r.stderr, pattern);
      const j = await box.run([...args, '--json']);
      assert.equal(j.code, 64);
      assert.equal(json(j).error.code, 64);
      assert.equal(j.stderr, '');
    });
  }

  it('server.mode prints, validates and commits the mode', async () => {
    assert.equal((await box.run(['server.mode'])).stdout, 'standby\n');
    const bad = await box.run(['server.mode', 'actve']);
    assert.equal(bad.code, 65);
    assert.match(bad.stderr, /^bootstrap: unknown mode 'actve' \(modes are: active, standby, maintenance; did you mean active\?\)\n$/);
    const set = await box.run(['server.mode', 'maintenance', '--no-apply']);
    assert.equal(set.code, 0, set.stderr);
    const get = await box.run(['server.mode', '--json']);
    assert.deepEqual(json(get), { schema_version: 1, mode: 'maintenance', origin: 'set', modes: ['active', 'standby', 'maintenance'] });
  });

  it('server.status reports mode, provisioning, products, lock and callbacks', async () => {
    const r = await box.run(['server.status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = json(r);
    assert.equal(s.mode, 'maintenance');
    assert.equal(s.provisioned, false);
    assert.deepEqual(s.products, [
      { name: 'deepfiler', version: '1.4.0', declared_version: '1.4.0', enabled: true },
      { name: 'haproxy', version: '2.6', declared_version: '2.6', enabled: true },
    ]);
    assert.equal(s.lock.state, 'free');
    assert.equal(s.callbacks.pending, 0);
    const human = await box.run(['server.status']);
    assert.match(human.stdout, /^server: +\S+\nmode: +maintenance\nprovisioned: +no\n/);
    assert.match(human.stdout, /lock: +free/);
  });

  it('completion prints a bash script that bash accepts, and completes product names', async () => {
    const r = await box.run(['completion']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /complete -o default -F _bootstrap_complete bootstrap/);
    execFileSync('bash', ['-n'], { input: r.stdout });
    const words = await box.run(['completion', '--words', 'settings']);
    assert.match(words.stdout, /^haproxy\.maxconn$/m);
    assert.match((await box.run(['completion', '--words', 'products'])).stdout, /^deepfiler$/m);
  });

  it('completion completes what fits where the cursor is: heartbeats, products, enum values after =, flags; zsh through bashcompinit', async () => {
    const script = (await box.run(['completion'])).stdout;
    const wrapper = join(box.dir, 'bootstrap-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`, { mode: 0o755 });
    const complete = (line: string): string[] => {
      const words = line.split(' ');
      const program = `${script}\nCOMP_LINE=${JSON.stringify(line)}; COMP_POINT=${line.length}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}\n_bootstrap_complete\nprintf '%s\\n' "\${COMPREPLY[@]}"`;
      const out = execFileSync('bash', ['-c', program], { env: { ...box.env, BOOTSTRAP_COMPLETION_BIN: wrapper }, encoding: 'utf8' });
      return out.split('\n').filter(Boolean).sort();
    };
    writeFileSync(box.config, `${readFileSync(box.config, 'utf8')}\n[heartbeat.disk]\ntype = exec\ncommand = true\n`);
    assert.deepEqual(complete('bootstrap heartbeat.get '), ['deepfiler', 'disk', 'haproxy']);
    assert.deepEqual(complete('bootstrap product.upgrade '), ['deepfiler', 'haproxy']);
    assert.deepEqual(complete('bootstrap product.set deepfiler.log_level='), ['debug', 'error', 'info', 'warn']);
    assert.deepEqual(complete('bootstrap product.set deepfiler.log_level=w'), ['warn']);
    assert.deepEqual(complete('bootstrap product.set haproxy.max'), ['haproxy.maxconn=']);
    assert.deepEqual(complete('bootstrap server.provision --dr'), ['--dry-run']);
    assert.ok(complete('bootstrap product.upgrade --').includes('--allow-downgrade'));
    const zsh = await box.run(['completion', '--shell', 'zsh']);
    assert.match(zsh.stdout, /^autoload -U \+X bashcompinit && bashcompinit$/m);
    execFileSync('bash', ['-n'], { input: zsh.stdout });
  });
});

describe('the --json interface', () => {
  it('one casing (snake_case), a schema_version on every object, no lock internals; --version --json too', async () => {
    const box = sandbox();
    try {
      mkdirSync(box.phasesDir, { recursive: true });
      const outputs = [
        await box.run(['server.status', '--json']),
        await box.run(['server.provision', '--json']),
        await box.run(['server.provision', '--dry-run', '--json']),
        await box.run(['phases.list', '--json']),
        await box.run(['runs.list', '--json']),
        await box.run(['product.get', '--json']),
        await box.run(['server.mode', '--json']),
        await box.run(['--version', '--json']),
        await box.run(['product.get', 'nope', '--json']),
      ];
      const keysOf = (v: unknown): string[] =>
        v && typeof v === 'object' ? Object.entries(v as object).flatMap(([k, x]) => [k, ...(k === 'products' && !Array.isArray(x) ? [] : keysOf(x))]) : [];
      for (const r of outputs) {
        const doc = json(r);
        assert.equal(doc.schema_version, 1, r.stdout);
        const camel = keysOf(doc).filter((k) => /[a-z][A-Z]/.test(k));
        assert.deepEqual(camel, [], `camelCase keys in ${r.stdout.slice(0, 200)}`);
        assert.doesNotMatch(r.stdout, /lockIno|lockBirthMs|lock_ino|pending\./);
      }
      assert.ok(typeof json(outputs[1]!).server === 'string' && json(outputs[1]!).server !== '', 'a run names its server');
      assert.match(json(outputs[7]!).version, /^\d+\.\d+\.\d+/);
    } finally {
      box.cleanup();
    }
  });
});

describe("an operator's first hour", () => {
  it('-q prints errors, warnings and a one-line result; -v shows the lock, the plan and each step as it starts', async () => {
    const box = sandbox(iniWith({}, '\n[heartbeat.ok]\ntype = exec\ncommand = true\n'));
    try {
      mkdirSync(join(box.phasesDir, 'configure.d'), { recursive: true });
      writeFileSync(join(box.phasesDir, 'configure.d', '10-a'), '#!/bin/sh\necho from-a\n', { mode: 0o755 });
      const quiet = await box.run(['server.provision', '-q']);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stderr, '');
      assert.match(quiet.stdout, /^provision success \(1 step: 0 changed, 1 unchanged, 0 skipped, 0 failed; [\d.]+ s, run \S+\)\n$/);
      const beat = await box.run(['heartbeat.checkup', '-q']);
      assert.equal(beat.stdout, 'healthy: 1/1 checks\n');
      assert.equal(beat.stderr, '');
      const verbose = await box.run(['server.refresh', '-v']);
      assert.match(verbose.stderr, /debug: run lock \S+run\.lock taken for run /);
      assert.match(verbose.stderr, /debug: plan: 1 steps in configure/);
      assert.match(verbose.stderr, /debug: configure\/10-a: starting \S+\/configure\.d\/10-a/);
    } finally {
      box.cleanup();
    }
  });

  it('product.set of the value in force is reported unchanged; every change is logged with who did it, secrets masked', async () => {
    const box = sandbox();
    try {
      const first = await box.run(['product.set', 'haproxy.maxconn=8192', 'haproxy.stats_password=Sekr1tPass', '--json'], { env: { SUDO_USER: 'alice' } });
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(json(first).changed.map((c: any) => c.setting), ['maxconn', 'stats_password']);
      assert.match(first.stderr, /product\.set by uid 0 \(sudo by alice\): haproxy\.maxconn 4096 → 8192/);
      assert.match(first.stderr, /haproxy\.stats_password \(unset\) → "\*{8}"/);
      assert.doesNotMatch(first.stderr, /Sekr1tPass/);
      const again = await box.run(['product.set', 'haproxy.maxconn=8192']);
      assert.equal(again.stdout, 'haproxy.maxconn = 8192 (unchanged)\n');
      assert.doesNotMatch(again.stderr, /product\.set by/);
    } finally {
      box.cleanup();
    }
  });

  it('a downgrade needs --allow-downgrade (2.10 > 2.9), and the message says what it would do', async () => {
    const box = sandbox();
    try {
      mkdirSync(box.phasesDir, { recursive: true });
      assert.equal((await box.run(['server.provision'])).code, 0);
      assert.equal((await box.run(['product.upgrade', 'haproxy', '--to', '2.10'])).code, 0);
      const down = await box.run(['product.upgrade', 'haproxy', '--to', '2.9']);
      assert.equal(down.code, 65);
      assert.match(down.stderr, /2\.9 is older than 2\.10, the version in force: that would be a downgrade \(pass --allow-downgrade to go from 2\.10 to 2\.9/);
      const back = await box.run(['product.upgrade', 'haproxy']);
      assert.equal(back.code, 65, 'plain upgrade back to the ini\'s 2.6 is a downgrade too');
      assert.match(back.stderr, /2\.6 \(the version in bootstrap\.ini\) is older than 2\.10/);
      const allowed = await box.run(['product.upgrade', 'haproxy', '--to', '2.9', '--allow-downgrade', '--json']);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.equal(json(await box.run(['server.status', '--json'])).products.find((p: any) => p.name === 'haproxy').version, '2.9');
    } finally {
      box.cleanup();
    }
  });

  it('flags get "did you mean"; bad numbers name the flag; a missing config names the shipped example', async () => {
    const box = sandbox();
    try {
      const typo = await box.run(['server.provision', '--dry-rn']);
      assert.equal(typo.code, 64);
      assert.equal(typo.stderr, 'bootstrap: unknown flag --dry-rn (did you mean --dry-run? see bootstrap server.provision --help)\n');
      assert.doesNotMatch(typo.stderr, /dryRn/);
      const nan = await box.run(['server.provision', '--timeout', 'abc']);
      assert.equal(nan.code, 64);
      assert.match(nan.stderr, /--timeout: not a positive number/);
      assert.doesNotMatch(nan.stderr, /NaN/);
      const missing = await box.run(['product.get', '--config', join(box.dir, 'nope.ini')]);
      assert.equal(missing.code, 66);
      assert.match(missing.stderr, new RegExp(`config file \\S+nope\\.ini not found \\(pass --config or set BOOTSTRAP_CONFIG; an example to start from: ${exampleIni.replace(/[.]/g, '\\.')}\\)`));
    } finally {
      box.cleanup();
    }
  });

  it('an exec check with shell syntax is refused (78) with the sh -c form, which then works, quoting included', async () => {
    const ini = (command: string) => `${readFileSync(exampleIni, 'utf8')}\n[heartbeat.disk]\ntype = exec\ncommand = ${command}\n`;
    const box = sandbox(ini('df -P / | tail -1'));
    try {
      const bad = await box.run(['heartbeat.get', 'disk']);
      assert.equal(bad.code, 78);
      assert.match(bad.stderr, /\[heartbeat\.disk\] command: '\|' is shell syntax, and the command runs without a shell \(write command = sh -c "df -P \/ \| tail -1" to run it with one\)/);
      writeFileSync(box.config, ini('sh -c "df -P / | tail -1"'));
      const good = await box.run(['heartbeat.get', 'disk', '--json']);
      assert.equal(good.code, 0, good.stderr);
      assert.match(json(good).results[0].detail, / \/$/);
    } finally {
      box.cleanup();
    }
  });
});

describe('a running run', () => {
  it('is visible: runs.show of the id server.status names shows it, and runs.show last --follow follows it to its end', async () => {
    const box = sandbox(iniWith());
    try {
      mkdirSync(join(box.phasesDir, 'configure.d'), { recursive: true });
      writeFileSync(join(box.phasesDir, 'configure.d', '10-fast'), '#!/bin/sh\necho fast\n', { mode: 0o755 });
      // The slow step waits for the test's word, not for a time: what is asserted never depends
      // on how fast the machine is (a 2.5 s step had ended before --follow began at load 15).
      writeFileSync(join(box.phasesDir, 'configure.d', '20-slow'), '#!/bin/sh\n: > "$BEGUN"\ni=0; while [ ! -f "$GO" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n', { mode: 0o755 });
      writeFileSync(join(box.phasesDir, 'configure.d', '30-fail'), '#!/bin/sh\n[ -f "$FAIL" ] && exit 4; true\n', { mode: 0o755 });
      const [fail, begun, go] = ['fail', 'begun', 'go'].map((n) => join(box.dir, n)) as [string, string, string];
      writeFileSync(fail, '');
      const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
        for (let i = 0; i < 400; i++) {
          if (await ok()) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.fail(`never: ${what}`);
      };
      const runner = collect(box.start(['server.provision'], { env: { FAIL: fail, BEGUN: begun, GO: go } }), 60_000);
      let id: string | null = null;
      await until('server.status names the running run', async () => (id = json(await box.run(['server.status', '--json'])).lock.holder?.run_id ?? null) !== null);
      await until('20-slow began', () => existsSync(begun));
      let shown = await box.run(['runs.show', id!]);
      await until('runs.show shows the run at 20-slow', async () => /now at configure\/20-slow/.test((shown = await box.run(['runs.show', id!])).stdout));
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, new RegExp(`^run ${id}: provision running, now at configure/20-slow`));
      assert.match(shown.stdout, /ok   10-fast/);
      assert.equal(json(await box.run(['runs.show', id!, '--json'])).alive, true);
      const follower = box.start(['runs.show', 'last', '--follow']);
      const following = collect(follower, 60_000);
      let seen = '';
      follower.stdout!.on('data', (d: string) => (seen += d));
      await until('--follow printed the steps so far', () => seen.includes('configure/10-fast: success'));
      writeFileSync(go, '');
      const followed = await following;
      assert.equal(followed.code, 1, 'the run\'s exit code');
      assert.match(followed.stdout, /configure\/20-slow: success ok/);
      assert.match(followed.stdout, /configure\/30-fail: failure exit 4/);
      assert.match(followed.stdout, new RegExp(`run ${id}: provision failure \\(exit 1\\)`));
      assert.equal((await runner).code, 1);
    } finally {
      box.cleanup();
    }
  });
});

describe('help', () => {
  it('examples never wrap inside a command, and each command lists its own options before the global ones', async () => {
    const box = sandbox();
    try {
      const all = ['product.get', 'product.set', 'product.unset', 'server.mode', 'server.provision', 'server.refresh', 'product.upgrade', 'phases.list', 'runs.list', 'runs.show', 'heartbeat.get', 'heartbeat.checkup', 'callback.flush', 'server.status', 'units.install', 'completion'];
      for (const command of all) {
        const r = await box.run([command, '--help']);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split('\n');
        const examples = lines.slice(lines.indexOf('Examples:') + 1).filter((l) => l.trim() !== '');
        assert.ok(examples.length >= 2, r.stdout);
        for (let i = 0; i < examples.length; i += 2) {
          assert.match(examples[i]!, /^  bootstrap \S/, `a command line: ${examples[i]}`);
          assert.match(examples[i + 1]!, /^      \S/, `its description below it: ${examples[i + 1]}`);
        }
        const own = r.stdout.indexOf(`${command} options:`);
        const global = r.stdout.indexOf('Global options:');
        assert.ok(global >= 0 && own < global, r.stdout);
      }
    } finally {
      box.cleanup();
    }
  });
});
