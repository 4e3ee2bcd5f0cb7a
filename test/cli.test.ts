import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { json, sandbox } from './helpers/cli.js';

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
    [['product.get', '--bogus'], /^bootstrap: Unknown argument: bogus/],
    [['product.get', 'a', 'b'], /^bootstrap: unexpected argument 'b'/],
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
      { name: 'deepfiler', version: '1.4.0', enabled: true },
      { name: 'haproxy', version: '2.6', enabled: true },
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
    const words = await box.run(['completion', '--words']);
    assert.match(words.stdout, /^haproxy\.maxconn$/m);
    assert.match(words.stdout, /^deepfiler$/m);
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
