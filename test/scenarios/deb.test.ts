// The Debian packages (scripts/build-deb.sh, docs/packages.md): built from this checkout's
// build, lintian-clean, with the contents the README promises, and working once unpacked: the
// bundled variant on its own Node 24, the arch:all one on the machine's Node, and an old Node
// refused with 69. Unpacked with dpkg-deb -x into a temp dir: no package is installed here (the
// booted-machine scenarios of issue #24 install them for real).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isolatedIni, root } from '../helpers/cli.js';
import { buildDebs, debNames, sharedDebs } from '../helpers/debs.js';
import { bundledNode, nodeBinary, nodeVersions } from '../helpers/node-bins.js';

const version = `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}-1`;
const debs = debNames;
const privateNode = 'usr/lib/bootstrap-agent/node/bin/node';

/** `dpkg-deb -c`: path → the listing's line (mode, owner, size, date). */
function contents(deb: string): Map<string, string> {
  const lines = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 16 << 20 }).trim().split('\n');
  return new Map(lines.map((l) => [l.replace(/^.*? \.\//, '/').replace(/ -> .*$/, '').replace(/\/$/, ''), l]));
}

const field = (deb: string, name: string): string => execFileSync('dpkg-deb', ['-f', deb, name], { encoding: 'utf8' }).trim();

/** /usr/bin/bootstrap of an unpacked package under `node`, on the shipped example (its steps write under `dir`/root). */
function runExample(node: string, tree: string, dir: string, command: string[]) {
  mkdirSync(dir, { recursive: true });
  const ini = join(dir, 'bootstrap.ini');
  writeFileSync(ini, isolatedIni(readFileSync(join(tree, 'usr/share/bootstrap-agent/examples/bootstrap.ini'), 'utf8')));
  const args = [join(tree, 'usr/bin/bootstrap'), ...command, '--config', ini, '--state-dir', join(dir, 'state'), '--phases-dir', join(tree, 'usr/share/bootstrap-agent/examples/phases')];
  return spawnSync(node, args, { encoding: 'utf8', env: { ...process.env, BOOTSTRAP_ROOT: join(dir, 'root') }, timeout: 120_000 });
}

// A guard against a hang only: 277-460 s measured on 2 cores at load 11-14 (lintian alone 100-210 s).
describe('Debian packages: scripts/build-deb.sh', { timeout: 1_800_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-deb-'));
  // Built once per build, shared with the booted-machine scenarios (test/helpers/debs.ts).
  let out = '';
  after(() => rmSync(dir, { recursive: true, force: true }));
  before(async () => {
    out = await sharedDebs();
  });

  it('builds both packages, named for Debian', () => {
    assert.deepEqual(readdirSync(out).sort(), [debs.node, debs.all].sort());
  });

  it('lintian: no error and no warning (overrides justified in scripts/deb/lintian-overrides)', () => {
    const r = spawnSync('lintian', ['--fail-on', 'error,warning', join(out, debs.all), join(out, debs.node)], { encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /^[EW]: /m);
  });

  it('control: the arch:all one needs the distro nodejs; the two conflict, replace each other and both are bootstrap-agent', () => {
    const all = join(out, debs.all);
    const node = join(out, debs.node);
    assert.equal(field(all, 'Architecture'), 'all');
    assert.equal(field(all, 'Depends'), 'nodejs (>= 20.19)');
    assert.equal(field(all, 'Conflicts'), 'bootstrap-agent-node');
    assert.equal(field(all, 'Replaces'), 'bootstrap-agent-node');
    assert.equal(field(node, 'Architecture'), 'amd64');
    assert.doesNotMatch(field(node, 'Depends'), /nodejs/);
    assert.equal(field(node, 'Conflicts'), 'bootstrap-agent');
    assert.equal(field(node, 'Provides'), `bootstrap-agent (= ${version})`);
  });

  it('contents: CLI, units (not enabled), example under /usr/share, logrotate, man page, copyright; root:root, one mtime', () => {
    for (const deb of [debs.all, debs.node]) {
      const files = contents(join(out, deb));
      const pkg = deb.split('_')[0]!;
      for (const f of ['/usr/bin/bootstrap', '/usr/bin/bootstrap-detach', '/usr/lib/bootstrap-agent/bin/bootstrap', '/usr/lib/bootstrap-agent/dist/bootstrap.cjs',
        '/usr/lib/bootstrap-agent/dist/bootstrap.cjs.cache', '/usr/lib/bootstrap-agent/dist/bootstrap.cjs.query.cache', '/usr/lib/bootstrap-agent/lib/launcher.bash', '/usr/lib/systemd/system/bootstrap-refresh.timer',
        '/usr/lib/systemd/system/bootstrap-resume.service', '/usr/share/bootstrap-agent/examples/bootstrap.ini', '/usr/share/bootstrap-agent/examples/phases/configure.d/20-haproxy',
        '/usr/share/bootstrap-agent/prometheus/bootstrap.rules.yml', '/usr/share/bootstrap-agent/fleet/rollout.yml', '/etc/logrotate.d/bootstrap',
        '/usr/share/man/man8/bootstrap.8.gz', `/usr/share/doc/${pkg}/copyright`, `/usr/share/doc/${pkg}/changelog.Debian.gz`]) {
        assert.ok(files.has(f), `${deb}: ${f}`);
      }
      assert.equal(files.has(`/${privateNode}`), deb === debs.node, `${deb}: its own node`);
      for (const f of files.keys()) assert.doesNotMatch(f, /^\/etc\/bootstrap|\/etc\/systemd|\.wants\//, `${deb}: ${f} configures the machine`);
      const lines = [...files.values()];
      assert.ok(lines.every((l) => / root\/root /.test(l)), `${deb}: all root:root`);
      assert.equal(new Set(lines.map((l) => /\d{4}-\d\d-\d\d \d\d:\d\d/.exec(l)![0])).size, 1, `${deb}: one mtime`);
    }
  });

  it('maintainer scripts: the conffile is only the logrotate snippet; no unit is enabled or started', () => {
    const control = join(dir, 'control');
    execFileSync('dpkg-deb', ['-e', join(out, debs.all), control]);
    assert.equal(readFileSync(join(control, 'conffiles'), 'utf8'), '/etc/logrotate.d/bootstrap\n');
    for (const s of ['postinst', 'prerm', 'postrm']) assert.doesNotMatch(readFileSync(join(control, s), 'utf8'), /\b(enable|start|restart)\b/, s);
    assert.match(readFileSync(join(control, 'postrm'), 'utf8'), /purge[\s\S]*rm -rf \/var\/bootstrap \/var\/log\/bootstrap/);
  });

  it('bootstrap-agent-node runs on its own Node 24: --version, the example provision, its code cache accepted', () => {
    const tree = join(dir, 'node-tree');
    execFileSync('dpkg-deb', ['-x', join(out, debs.node), tree]);
    const node = join(tree, privateNode);
    assert.equal(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim(), `v${bundledNode}`);
    assert.equal(execFileSync(node, [join(tree, 'usr/bin/bootstrap'), '--version'], { encoding: 'utf8' }).trim(), version.replace(/-1$/, ''));
    assert.equal(readFileSync(join(tree, 'usr/lib/bootstrap-agent/bin/bootstrap'), 'utf8').split('\n')[0], `#!/${privateNode}`);
    const run = runExample(node, tree, join(dir, 'node-run'), ['server.provision']);
    assert.equal(run.status, 0, run.stderr);
    // The caches were made by this Node at build time: V8 takes them (another Node's would be rejected).
    const check = "const fs=require('fs'),vm=require('vm'),M=require('module');const f=process.argv[1];" +
      "const s=new vm.Script(M.wrap(fs.readFileSync(f,'utf8')),{filename:f,cachedData:fs.readFileSync(f+process.argv[2])});process.stdout.write(String(s.cachedDataRejected))";
    for (const cache of ['.cache', '.query.cache']) assert.equal(execFileSync(node, ['-e', check, join(tree, 'usr/lib/bootstrap-agent/dist/bootstrap.cjs'), cache], { encoding: 'utf8' }), 'false', cache);
  });

  it('bootstrap-agent runs on the machine\'s Node (#!/usr/bin/node): --version, the example provision, units.install finds its units', () => {
    const tree = join(dir, 'all-tree');
    execFileSync('dpkg-deb', ['-x', join(out, debs.all), tree]);
    assert.equal(readFileSync(join(tree, 'usr/lib/bootstrap-agent/bin/bootstrap'), 'utf8').split('\n')[0], '#!/usr/bin/node');
    assert.equal(execFileSync(process.execPath, [join(tree, 'usr/bin/bootstrap'), '--version'], { encoding: 'utf8' }).trim(), version.replace(/-1$/, ''));
    const run = runExample(process.execPath, tree, join(dir, 'all-run'), ['server.provision']);
    assert.equal(run.status, 0, run.stderr);
    const units = join(dir, 'units');
    execFileSync(process.execPath, [join(tree, 'usr/bin/bootstrap'), 'units.install', '--dir', units, '--no-reload'], { encoding: 'utf8' });
    assert.equal(readdirSync(units).filter((n) => /\.(service|timer)$/.test(n)).length, 5);
  });

  it('on Debian 12\'s Node 18 the arch:all package refuses with one line and 69', () => {
    const r = spawnSync(nodeBinary(nodeVersions.debian12), [join(dir, 'all-tree', 'usr/bin/bootstrap'), '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 69);
    assert.match(r.stderr, /^bootstrap: needs Node 20\.19 or later, found 18\.20\.4 .*\n$/);
  });

  it('reproducible: the arch:all package built again is the same bytes', () => {
    const again = join(dir, 'again');
    buildDebs(again, '--only', 'all');
    assert.ok(readFileSync(join(again, debs.all)).equals(readFileSync(join(out, debs.all))));
  });
});
