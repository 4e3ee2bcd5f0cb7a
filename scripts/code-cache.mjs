// Makes V8's code caches for dist/bootstrap.cjs (see bin/bootstrap): loads the bundle as the
// launcher does, runs commands in this one process, then saves what V8 compiled. Two caches of the
// one bundle, each made in a process of its own (V8 shares what one script compiled with another
// of the same source in a process): bootstrap.cjs.cache, what the commands that run the pipeline
// compile (a provision and a refresh: the timer's), and bootstrap.cjs.query.cache, what
// product.get and server.status compile (the commands that run none: half the size, ~5 ms less
// to read and deserialize at each start).
//   node scripts/code-cache.mjs [run|query]   (neither: both, each in a child process)
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import vm from 'node:vm';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = join(root, 'dist/bootstrap.cjs');
const kinds = {
  // The last one without -q: it logs, so winston's code is compiled and cached too.
  run: { out: `${file}.cache`, commands: [['product.get', '--json'], ['server.provision'], ['server.refresh'], ['server.refresh', '--log-level', 'info']] },
  query: { out: `${file}.query.cache`, commands: [['product.get', '--json'], ['server.status', '--json']] },
};
const kind = process.argv[2];
if (!Object.hasOwn(kinds, kind ?? '')) {
  for (const k of Object.keys(kinds)) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), k], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`code cache (${k}): ${r.error?.message ?? `exit ${r.status ?? r.signal}`}`);
  }
  process.exit(0);
}
// V8 keeps the name a script was compiled under in its code cache, and a script loaded from the
// cache reports that name in stack traces, whatever file it was loaded from: compiled under this
// build machine's path, every installed copy would name it. A name relative to the package
// instead; with BOOTSTRAP_DEBUG set, bin/bootstrap compiles without the cache, so traces name
// the installed file itself.
const cachedName = 'bootstrap-agent/dist/bootstrap.cjs';
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: cachedName });
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));

const dir = mkdtempSync(join(tmpdir(), 'bootstrap-cache-'));
try {
  const phases = join(dir, 'phases');
  mkdirSync(join(phases, 'configure.d'), { recursive: true });
  writeFileSync(join(phases, 'configure.d', '10-step'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(phases, 'configure.d', '10-step'), 0o755);
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  const io = { stdout: sink(), stderr: sink(), env: { PATH: process.env.PATH } };
  // The example's config, but never the machine's os-refresh-config lock: a build on a node where
  // os-refresh-config runs (or CI, which holds that lock to prove the tests ignore it) must not wait on it.
  const ini = join(dir, 'bootstrap.ini');
  writeFileSync(ini, readFileSync(join(root, 'etc/bootstrap.ini'), 'utf8').replace(/^\[phases\][ \t]*$/m, "[phases]\norc_lockfile = ''"));
  const common = ['--config', ini, '--state-dir', join(dir, 'state'), '--phases-dir', phases, '-q'];
  for (const command of kinds[kind].commands) {
    const code = await module.exports.main([...command, ...common.filter((a) => a !== '-q' || command.length === 1)], io);
    if (code !== 0) throw new Error(`code cache: ${command[0]} exited ${code}`);
  }
  writeFileSync(kinds[kind].out, script.createCachedData());
} finally {
  rmSync(dir, { recursive: true, force: true });
}
