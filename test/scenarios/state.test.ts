import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Agent } from '../../src/agent.js';
import { collect, json, sandbox } from '../helpers/cli.js';

describe('state.json: concurrency and crash safety', () => {
  const settings = Array.from({ length: 50 }, (_, i) => `s${i} = int`).join('\n');
  const box = sandbox(`[server]\nmodes = active, standby\n[product.p]\nversion = 1\n[product.p.settings]\n${settings}\na = int:0\nb = int:0\n`);
  after(() => box.cleanup());
  const state = () => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));

  it('50 product.set started at once, each a different setting: all 50 values are there', async () => {
    const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => box.run(['product.set', `p.s${i}=${i}`])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const saved = state().products.p.settings;
    for (let i = 0; i < 50; i++) assert.equal(saved[`s${i}`], i, `s${i}`);
  });

  it('100 product.set killed with SIGKILL at random moments: state.json always parses, old or new, never a mix', async () => {
    let committed = 0;
    let killedBeforeCommit = 0;
    // Seeded, so a failure can be replayed.
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // A kill moment is a random fraction (0 to 1.3) of how long one product.set takes now, timed
    // from the child's own spawn. "Now" is re-measured on every trial the kill missed (the child
    // finished first), so the window follows the machine as other suites start and stop: a span
    // measured once at the start missed the commit under the parallel runner ("committed 0"). A
    // kill aimed past the end that still found the child running stretches the span by half.
    let span = await measureSet(box);
    // The trials must hit both sides of the commit, or they prove nothing. Should a sudden change
    // of load leave a side short after 100 trials, more trials follow (at most 200 more), each
    // aiming at the side still short; every trial is checked the same way.
    const enough = () => committed > 5 && killedBeforeCommit > 5;
    for (let trial = 1; trial <= 100 || (!enough() && trial <= 300); trial++) {
      const before = state().products.p.settings as { a: number; b: number };
      assert.equal(before.a, before.b);
      const fraction = trial <= 100 ? random() * 1.3 : committed <= 5 ? 1 + random() * 0.3 : random() * 0.5;
      const child = box.start(['product.set', `p.a=${trial}`, `p.b=${trial}`]);
      let killed = false;
      let spawnedAt = performance.now();
      let timer: NodeJS.Timeout | undefined;
      child.once('spawn', () => {
        spawnedAt = performance.now();
        timer = setTimeout(() => {
          killed = child.exitCode === null && child.signalCode === null; // else it beat the kill
          child.kill('SIGKILL');
        }, Math.floor(fraction * span));
      });
      const r = await collect(child);
      clearTimeout(timer);
      if (!killed) span = performance.now() - spawnedAt;
      else if (fraction >= 1) span *= 1.5; // aimed past its end and it still ran: the machine slowed down
      const after = state().products.p.settings as { a: number; b: number };
      assert.equal(after.a, after.b, `trial ${trial}: a and b differ`);
      assert.ok(after.a === before.a || after.a === trial, `trial ${trial}: ${after.a} is neither old ${before.a} nor new ${trial}`);
      if (after.a === trial) committed++;
      else killedBeforeCommit++;
      if (r.code === 0) assert.equal(after.a, trial, 'exit 0 means written');
    }
    assert.ok(enough(), `committed ${committed}, killed before commit ${killedBeforeCommit}`);
    const last = await box.run(['product.set', 'p.a=1000', 'p.b=1000']);
    assert.equal(last.code, 0, `no lock left behind: ${last.stderr}`);
  });
});

describe('state.json: broken files are reported, never reset', () => {
  const box = sandbox();
  after(() => box.cleanup());
  const file = () => join(box.stateDir, 'state.json');

  const cases: [string, string | null, RegExp][] = [
    ['truncated', '{"schema": 1, "mode": "act', /state file .*state\.json is broken: not JSON/],
    ['not JSON', 'hello', /is broken: not JSON/],
    ['empty', '', /is broken: it is empty/],
    ['wrong shape', '{"schema": 1, "mode": 3, "provisioned_at": null, "products": {}}', /is broken: mode is a number, not a string/],
    ['products of the wrong shape', '{"schema": 1, "mode": null, "provisioned_at": null, "products": {"haproxy": 1}}', /products\.haproxy is a number, not an object/],
    ['an array', '[]', /not a JSON object/],
    ['newer schema', '{"schema": 99}', /has schema 99, newer than the 1 this bootstrap knows \(upgrade bootstrap-agent\)/],
  ];
  for (const [name, content, pattern] of cases) {
    it(`${name}: exit 73, file untouched`, async () => {
      mkdirSync(box.stateDir, { recursive: true, mode: 0o700 });
      writeFileSync(file(), content!);
      for (const args of [['product.get'], ['product.set', 'haproxy.maxconn=1'], ['server.status']]) {
        const r = await box.run(args);
        assert.equal(r.code, 73, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, pattern);
        assert.equal(readFileSync(file(), 'utf8'), content, 'never reset');
      }
    });
  }

  it('a state.json that is a symlink is refused, not followed', async () => {
    rmSync(file(), { force: true });
    const elsewhere = join(box.dir, 'elsewhere.json');
    writeFileSync(elsewhere, '{"schema": 1, "mode": null, "provisioned_at": null, "products": {}}');
    symlinkSync(elsewhere, file());
    const r = await box.run(['product.set', 'haproxy.maxconn=1']);
    assert.equal(r.code, 73);
    assert.match(r.stderr, /is a symbolic link; refusing to follow it/);
    assert.equal(readFileSync(elsewhere, 'utf8'), '{"schema": 1, "mode": null, "provisioned_at": null, "products": {}}');
    rmSync(file());
  });

  it('a state dir that cannot be created exits 73 (as root: a file in the way)', async () => {
    const blocked = join(box.dir, 'blocked');
    writeFileSync(blocked, 'not a dir');
    const r = await box.run(['product.set', 'haproxy.maxconn=1', '--state-dir', join(blocked, 'state')]);
    assert.equal(r.code, 73, r.stderr);
    assert.match(r.stderr, /cannot create state dir .*blocked\/state: .*not a directory/);
  });
});

describe('Agent as a library', () => {
  it('two agents on two state dirs in one process do not interfere', async () => {
    const one = sandbox();
    const two = sandbox();
    try {
      const a = new Agent({ config: one.config, stateDir: one.stateDir, env: {} });
      const b = new Agent({ config: two.config, stateDir: two.stateDir, env: {} });
      await Promise.all([a.productSet({ pairs: ['haproxy.maxconn=1'] }), b.productSet({ pairs: ['haproxy.maxconn=2'] })]);
      await Promise.all([a.commitMode('active'), b.commitMode('maintenance')]);
      assert.equal((await a.productGet({ path: 'haproxy.maxconn' })).setting!.value, 1);
      assert.equal((await b.productGet({ path: 'haproxy.maxconn' })).setting!.value, 2);
      assert.equal((await a.getMode()).mode, 'active');
      assert.equal((await b.getMode()).mode, 'maintenance');
    } finally {
      one.cleanup();
      two.cleanup();
    }
  });

  it('a 1 MB value through the library is stored whole', async () => {
    const box = sandbox();
    try {
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: {} });
      await agent.productSet({ pairs: [`haproxy.stats_password=${'y'.repeat(1024 * 1024)}`] });
      const r = await box.run(['product.get', 'haproxy.stats_password', '--reveal', '--json']);
      assert.equal(json(r).value.length, 1024 * 1024);
    } finally {
      box.cleanup();
    }
  });
});

/** How long an uninterrupted product.set takes here: the slowest of three, in ms. */
async function measureSet(box: ReturnType<typeof sandbox>): Promise<number> {
  let slowest = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const r = await box.run(['product.set', 'p.a=0', 'p.b=0']);
    assert.equal(r.code, 0, r.stderr);
    slowest = Math.max(slowest, performance.now() - started);
  }
  return slowest;
}
