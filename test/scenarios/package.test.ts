import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exampleIni, isolatedIni, root, runCli } from '../helpers/cli.js';

/** The example's bootstrap.ini, copied into `dir` with the machine's os-refresh-config lock not honoured (helpers/cli). */
function exampleIn(dir: string): string {
  const copy = join(dir, 'bootstrap.ini');
  writeFileSync(copy, isolatedIni(readFileSync(exampleIni, 'utf8')));
  return copy;
}
import { script } from '../helpers/phases.js';

describe('packaging: npm pack, npm install -g into a fresh prefix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-pack-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = join(dir, 'prefix');
  const installed = join(prefix, 'bin', 'bootstrap');

  it('the tarball ships the CLI, library, example, units, schema, README, docs and licence, and no tests or sources', () => {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    for (const f of ['bin/bootstrap', 'bin/package.json', 'lib/launcher.bash', 'lib/bootstrap-detach', 'dist/bootstrap.cjs', 'dist/src/index.js', 'dist/src/index.d.ts', 'etc/bootstrap.ini', 'phases/configure.d/20-haproxy', 'systemd/bootstrap-refresh.timer', 'schema/callback.schema.json', 'README.md', 'docs/README.md', 'docs/contract.md', 'docs/commands.md', 'LICENSE']) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    for (const f of files) assert.doesNotMatch(f, /^(test|src|dist\/test|bench|scripts)\/|\.ts$(?<!\.d\.ts$)|\.map$/, `${f} should not ship`);
  });

  it('installs with no dev dependencies; --version, --help, phases.list and a run work from it', () => {
    const tarball = readdirSync(dir).find((n) => n.endsWith('.tgz'))!;
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tarball)], { stdio: 'ignore', timeout: 240_000 });
    const modules = readdirSync(join(prefix, 'lib', 'node_modules', 'bootstrap-agent', 'node_modules'));
    for (const dev of ['typescript', 'esbuild']) assert.ok(!modules.includes(dev), `${dev} installed`);
    const types = modules.includes('@types') ? readdirSync(join(prefix, 'lib', 'node_modules', 'bootstrap-agent', 'node_modules', '@types')) : [];
    for (const dev of ['node', 'yargs', 'ini', 'proper-lockfile']) assert.ok(!types.includes(dev), `@types/${dev} installed`);
    // The service hand-over helper is on PATH beside bootstrap (docs/writing-steps.md: Migrating from os-refresh-config).
    assert.equal(spawnSync(join(prefix, 'bin', 'bootstrap-detach'), [], { encoding: 'utf8' }).status, 64);
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
    assert.equal(execFileSync(installed, ['--version'], { encoding: 'utf8' }).trim(), version);
    assert.match(execFileSync(installed, ['--help'], { encoding: 'utf8' }), /server\.provision/);
    const plan = JSON.parse(execFileSync(installed, ['phases.list', '--json', '--phases-dir', join(prefix, 'lib', 'node_modules', 'bootstrap-agent', 'phases'), '--config', exampleIni], { encoding: 'utf8' }));
    assert.deepEqual(
      plan.phases.find((p: { phase: string }) => p.phase === 'configure').steps.map((s: { name: string }) => s.name),
      ['20-haproxy', '30-deepfiler', '40-apt-periodic'],
    );
    // A run from the installed package: its step launcher ships with it.
    const phases = join(dir, 'installed-phases');
    script(join(phases, 'configure.d', '10-hello'), 'echo "hello from $BOOTSTRAP_PHASE"');
    const run = spawnSync(installed, ['server.provision', '--phases-dir', phases, '--config', exampleIn(dir), '--state-dir', join(dir, 'installed-state')], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /configure\/10-hello \| hello from configure/);
  });

  it('systemd-analyze verify accepts every unit, with ExecStart at the installed CLI (units.install)', () => {
    const units = join(dir, 'units');
    execFileSync(installed, ['units.install', '--dir', units, '--no-reload'], { encoding: 'utf8' });
    const names = readdirSync(units);
    assert.deepEqual(names.sort(), ['bootstrap-heartbeat.service', 'bootstrap-heartbeat.timer', 'bootstrap-refresh.service', 'bootstrap-refresh.timer', 'bootstrap-resume.service']);
    assert.match(readFileSync(join(units, 'bootstrap-refresh.service'), 'utf8'), new RegExp(`^ExecStart=${installed} server\\.refresh`, 'm'));
    const resume = readFileSync(join(units, 'bootstrap-resume.service'), 'utf8');
    assert.match(resume, new RegExp(`^ExecStart=${installed} server\\.resume`, 'm'));
    assert.match(resume, /^Type=oneshot$/m);
    assert.match(resume, /^After=network-online\.target$/m);
    assert.match(resume, /^Before=bootstrap-refresh\.timer bootstrap-refresh\.service$/m);
    // --man=no: Documentation=man:bootstrap(8) comes with the Debian packages (deb.test.ts), not with npm.
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names.map((n) => join(units, n))], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no warnings either');
  });

  it('units.install carries the config, state and phases paths it was given (flags or environment) into every unit', () => {
    const units = join(dir, 'units-paths');
    const config = join(dir, 'opt dir', 'b.ini');
    execFileSync(installed, ['units.install', '--dir', units, '--no-reload', '--config', config, '--state-dir', '/srv/bootstrap'], { encoding: 'utf8', env: { PATH: process.env['PATH'], BOOTSTRAP_PHASES_DIR: '/srv/phases' } });
    for (const name of ['bootstrap-refresh.service', 'bootstrap-heartbeat.service']) {
      const text = readFileSync(join(units, name), 'utf8');
      assert.match(text, new RegExp(`^ExecStart=${installed} "--config" "${config}" --state-dir /srv/bootstrap --phases-dir /srv/phases (server\\.refresh|heartbeat\\.checkup)`.replace('"--config"', '--config'), 'm'));
      assert.match(text, new RegExp(`^ConditionPathExists=${config}$`, 'm'));
    }
    const names = readdirSync(units).map((n) => join(units, n));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('the embedded example (npm start)', () => {
  it('server.provision then server.refresh succeed as a normal user, render the configs, and a failure leaves a summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-example-'));
    try {
      const env = { PATH: process.env['PATH'], BOOTSTRAP_ROOT: join(dir, 'root') };
      const args = ['--config', exampleIn(dir), '--state-dir', join(dir, 'state'), '--phases-dir', join(root, 'phases')];
      const first = await runCli(['server.provision', ...args], { env });
      assert.equal(first.code, 0, first.stderr);
      const second = await runCli(['server.refresh', ...args], { env });
      assert.equal(second.code, 0, second.stderr);
      const cfg = readFileSync(join(dir, 'root/etc/haproxy/haproxy.cfg'), 'utf8');
      assert.match(cfg, /maxconn 4096/);
      assert.match(readFileSync(join(dir, 'root/etc/deepfiler/deepfiler.conf'), 'utf8'), /port = 7070/);
      assert.equal(readFileSync(join(dir, 'root/var/lib/deepfiler/DATA_VERSION'), 'utf8').trim(), '1.4.0');
      if (existsSync('/usr/sbin/haproxy')) assert.match(second.stderr, /haproxy -c: .* is valid/);
      // A failing step: error.d leaves a summary where operators look first.
      const phases = join(dir, 'phases');
      cpSync(join(root, 'phases'), phases, { recursive: true });
      script(join(phases, 'post-configure.d', '60-fail'), 'echo broken; exit 3');
      const bad = await runCli(['server.refresh', ...args, '--phases-dir', phases], { env });
      assert.equal(bad.code, 1);
      assert.match(readFileSync(join(dir, 'root/var/log/bootstrap/last-failure.txt'), 'utf8'), /failed: post-configure\/60-fail\nhow: +exit \(exit 3\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
