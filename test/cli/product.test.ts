import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { json, sandbox } from '../helpers/cli.js';

describe('product.get / product.set / product.unset', () => {
  const box = sandbox();
  after(() => box.cleanup());
  const state = () => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));

  it('product.get shows defaults of bootstrap.ini before anything is set, without creating the state dir', async () => {
    const r = await box.run(['product.get', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const haproxy = json(r).products.find((p: any) => p.name === 'haproxy');
    assert.equal(haproxy.version, '2.6');
    assert.deepEqual(
      haproxy.settings.map((s: any) => [s.name, s.value, s.origin]),
      [
        ['bind_port', 80, 'default'],
        ['maxconn', 4096, 'default'],
        ['stats_password', null, 'unset'],
      ],
    );
    assert.throws(() => statSync(box.stateDir), /ENOENT/);
  });

  it('product.set writes typed values, state dir 0700 and state.json 0600', async () => {
    const r = await box.run(['product.set', 'haproxy.maxconn=8000', 'haproxy.bind_port=8080', 'deepfiler.log_level=debug']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'haproxy.maxconn = 8000\nhaproxy.bind_port = 8080\ndeepfiler.log_level = debug\n');
    assert.deepEqual(state().products.haproxy.settings, { maxconn: 8000, bind_port: 8080 });
    assert.equal(statSync(box.stateDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(box.stateDir, 'state.json')).mode & 0o777, 0o600);
    const one = await box.run(['product.get', 'haproxy.maxconn']);
    assert.equal(one.stdout, '8000\n');
    const origin = await box.run(['product.get', 'haproxy.maxconn', '--show-origin']);
    assert.equal(origin.stdout, '8000\t(set)\n');
  });

  it('VALUE may contain = and shell metacharacters, kept byte for byte', async () => {
    const value = `a=b; $(rm -rf /) 'q' "d" \`x\` | & > ünïcödé\nline2`;
    const r = await box.run(['product.set', `haproxy.stats_password=${value}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'haproxy.stats_password = ********\n');
    assert.equal(state().products.haproxy.settings.stats_password, value);
    const shown = await box.run(['product.get', 'haproxy.stats_password', '--json']);
    assert.equal(json(shown).value, '********');
    const revealed = await box.run(['product.get', 'haproxy.stats_password', '--reveal', '--json']);
    assert.equal(json(revealed).value, value);
  });

  it('secrets are masked in product.get unless --reveal', async () => {
    const r = await box.run(['product.get', 'haproxy']);
    assert.match(r.stdout, /stats_password = \*\*\*\*\*\*\*\*/);
    assert.doesNotMatch(r.stdout, /rm -rf/);
  });

  for (const [args, code, pattern] of [
    [['product.set', 'haproxyy.maxconn=1'], 65, /unknown product 'haproxyy' \(known: deepfiler, haproxy; did you mean haproxy\?\)/],
    [['product.set', 'haproxy.maxcon=1'], 65, /unknown setting 'haproxy\.maxcon' \(haproxy has: bind_port, maxconn, stats_password; did you mean maxconn\?\)/],
    [['product.set', 'haproxy.maxconn=lots'], 65, /haproxy\.maxconn: value 'lots' is not an integer from 1 to 100000 \(haproxy\.maxconn is of type int\(1\.\.100000\)\)/],
    [['product.set', 'haproxy.bind_port=0'], 65, /is not a port number from 1 to 65535/],
    [['product.set', 'deepfiler.log_level=loud'], 65, /is not one of debug, info, warn, error/],
    [['product.set', '='], 64, /'=…' is not PRODUCT\.SETTING=VALUE/],
    [['product.set', 'a='], 64, /'a=' names no setting/],
    [['product.set', '.x=1'], 64, /'\.x=…' is not PRODUCT\.SETTING=VALUE/],
    [['product.set', 'a.b.c=1'], 64, /'a\.b\.c=…' is not PRODUCT\.SETTING=VALUE/],
    [['product.get', 'a.b.c'], 64, /'a\.b\.c' is not PRODUCT or PRODUCT\.SETTING/],
    [['product.set', 'haproxy.maxconn'], 64, /is not PRODUCT\.SETTING=VALUE/],
    [['product.set'], 64, /product\.set needs <pairs\.\.>/],
    [['product.get', 'nope'], 65, /unknown product 'nope'/],
    [['product.get', 'haproxy.nope'], 65, /unknown setting 'haproxy\.nope'/],
    [['product.unset', 'haproxy.nope'], 65, /unknown setting/],
  ] as [string[], number, RegExp][]) {
    it(`${args.join(' ')} → exit ${code}`, async () => {
      const before = readFileSync(join(box.stateDir, 'state.json'), 'utf8');
      const r = await box.run(args);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, /^bootstrap: [^\n]+\n$/, 'one line on stderr');
      assert.equal(readFileSync(join(box.stateDir, 'state.json'), 'utf8'), before, 'nothing written');
    });
  }

  it('all or none: one bad pair among good ones writes nothing', async () => {
    const before = readFileSync(join(box.stateDir, 'state.json'), 'utf8');
    const r = await box.run(['product.set', 'haproxy.maxconn=1', 'deepfiler.port=99999', 'deepfiler.log_level=warn']);
    assert.equal(r.code, 65);
    assert.match(r.stderr, /deepfiler\.port: value '99999'/);
    assert.equal(readFileSync(join(box.stateDir, 'state.json'), 'utf8'), before);
  });

  it('a 120 KiB value (near the kernel limit for one argument) is accepted and read back whole', async () => {
    const big = 'x'.repeat(120 * 1024);
    const r = await box.run(['product.set', `haproxy.stats_password=${big}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(state().products.haproxy.settings.stats_password.length, big.length);
  });

  it('product.unset goes back to the default', async () => {
    const r = await box.run(['product.unset', 'haproxy.maxconn', 'haproxy.stats_password', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(json(r).changed[0], { product: 'haproxy', setting: 'maxconn', value: 4096, previous: 8000 });
    assert.equal(json(r).changed[1].previous, '********');
    assert.deepEqual(state().products.haproxy.settings, { bind_port: 8080 });
    const get = await box.run(['product.get', 'haproxy.maxconn', '--show-origin']);
    assert.equal(get.stdout, '4096\t(default)\n');
  });
});
