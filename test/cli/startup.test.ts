// What a start of the CLI loads. Node's built-ins that cost a start milliseconds each (crypto,
// child_process, assert, fs/promises: 3–12 ms apiece on Node 24) are loaded only by the
// commands that use them (src/util/lazy.ts; the shimmed imports in scripts/build.mjs): one
// top-level import of one of them anywhere in the bundle, and every command pays it again.
// Measured by bench/startup.mjs; this only checks which modules a start loads, whatever the
// machine's speed.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sandbox, type Sandbox } from '../helpers/cli.js';

// (net and stream: below, for the query commands; a run loads them with child_process.)
const costly = ['crypto', 'child_process', 'assert', 'internal/fs/promises'];

describe('start-up: what a command loads', () => {
  let box: Sandbox;
  let preload: string;
  before(() => {
    box = sandbox();
    preload = join(box.dir, 'modules.cjs');
    // At exit, Node's own list of the built-in modules this process loaded.
    writeFileSync(preload, "process.on('exit', () => require('node:fs').writeFileSync(process.env.LOADED_OUT, process.moduleLoadList.join('\\n')));\n");
  });
  after(() => box.cleanup());

  async function loaded(args: string[], prefix?: string[]): Promise<string[]> {
    const out = join(box.dir, `loaded-${args[0]}`);
    const r = await box.run(args, { env: { NODE_OPTIONS: `--require=${preload}`, LOADED_OUT: out }, ...(prefix && { prefix }) });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('NativeModule ')).map((l) => l.slice('NativeModule '.length));
  }

  for (const args of [['product.get', '--json'], ['server.status', '--json'], ['--version']]) {
    it(`${args.join(' ')} loads none of ${costly.join(', ')}`, async () => {
      const modules = await loaded(args);
      assert.ok(modules.includes('vm'), 'the list is read (bin/bootstrap loads vm)');
      assert.deepEqual(costly.filter((m) => modules.includes(m)), []);
    });
  }

  // src/cli/stdout.ts: standard output on a socket (the tests' stdio), a pipe or a file is written
  // with writeSync; process.stdout would load net (a socket, a pipe) or the fs streams (a file).
  const outputs: [string, string[] | undefined][] = [
    ['a socket', undefined],
    ['a pipe', ['sh', '-c', '"$@" | cat', 'sh']],
    ['a file', ['sh', '-c', '"$@" > "$LOADED_OUT.stdout"', 'sh']],
  ];
  for (const args of [['product.get', '--json'], ['server.status', '--json']]) {
    for (const [output, prefix] of outputs) {
      it(`${args.join(' ')} writes its answer to ${output} without Node's stream modules (net, stream)`, async () => {
        const modules = await loaded(args, prefix);
        assert.deepEqual(['net', 'stream', 'internal/fs/sync_write_stream'].filter((m) => modules.includes(m)), [], modules.join(' '));
      });
    }
  }

  it('a command that runs steps loads child_process, but not crypto, assert, perf_hooks, fs streams or fs.promises', async (t) => {
    // A run hashes its state dir (crypto) to judge a scratch dir whose owner died, in /dev/shm or
    // the temp dir: other tests leave such dirs there for a moment. This run gets empty ones of
    // its own (a private mount namespace: the machine's /dev/shm is never touched).
    if (process.getuid?.() !== 0) return t.skip('needs root, for a private /dev/shm');
    const tmp = join(box.dir, 'tmp');
    mkdirSync(tmp);
    const modules = await loaded(['server.provision'], ['unshare', '-m', 'sh', '-c', `mount -t tmpfs tmpfs /dev/shm && TMPDIR=${tmp} exec "$@"`, 'sh']);
    assert.ok(modules.includes('child_process'), modules.join(' '));
    // Its random names and nonces come from /dev/urandom (util/random.ts), and signal-exit's one
    // assert (proper-lockfile's, for the run lock) is shimmed: crypto only signs and hashes.
    // Durations are timed with process.hrtime (util/clock.ts): the `performance` global would load
    // perf_hooks (~0.75 ms). proper-lockfile gets node:fs, not graceful-fs, whose start patched
    // node:fs and loaded its streams and `constants` (scripts/build.mjs, ~1.5 ms). A run's own
    // files are read, written and listed with synchronous calls: fs.promises is not started (~1 ms).
    const unwanted = ['crypto', 'assert', 'perf_hooks', 'internal/perf/performance', 'internal/fs/streams', 'constants', 'internal/fs/promises'];
    assert.deepEqual(unwanted.filter((m) => modules.includes(m)), [], modules.join(' '));
  });
});
