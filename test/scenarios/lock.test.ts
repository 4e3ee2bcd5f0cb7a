import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LockHeldError } from '../../src/errors.js';
import { PidLock } from '../../src/lock/pid-lock.js';
import { root } from '../helpers/cli.js';

/** A Node child running `script` (an async body), with its first line of output and its end. */
function nodeChild(script: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `(async () => {${script}})()`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, ready, done };
}

/** A child process that takes the lock, says so, and holds it until killed. */
function holder(path: string, command = 'server.provision') {
  return nodeChild(`
    const { PidLock } = await import(${JSON.stringify(join(root, 'dist/src/lock/pid-lock.js'))});
    const lock = new PidLock(${JSON.stringify(path)});
    try { await lock.acquire({ command: ${JSON.stringify(command)} }); console.log('locked'); }
    catch (e) { console.log('held ' + e.exitCode + ' ' + e.describe()); process.exitCode = e.exitCode; return; }
    setInterval(() => {}, 1000);
    process.on('SIGTERM', () => process.exit(0));`);
}

/** A child process that holds the takeover guard at `path` until killed (as if killed during a takeover). */
function guardHolder(path: string) {
  return nodeChild(`
    const { withGuard } = await import(${JSON.stringify(join(root, 'dist/src/lock/guard.js'))});
    process.on('SIGTERM', () => process.exit(0));
    await withGuard(${JSON.stringify(path)}, () => { console.log('guarded'); return new Promise(() => setInterval(() => {}, 1000)); });`);
}

/** A lock at `path` whose holder was SIGKILLed: left behind, its holder dead. Returns that holder. */
async function deadHolder(path: string) {
  const a = holder(path);
  assert.equal(await a.ready, 'locked');
  a.child.kill('SIGKILL');
  await a.done;
  return a;
}

describe('run lock (PidLock)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-lock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('two processes racing: exactly one holds it, the other is told who (exit 75)', async () => {
    const path = join(dir, 'race.lock');
    const a = holder(path);
    const b = holder(path);
    const results = await Promise.all([a.ready, b.ready]);
    assert.equal(results.filter((r) => r === 'locked').length, 1, results.join(' / '));
    const loser = results.find((r) => r !== 'locked')!;
    const winner = results[0] === 'locked' ? a : b;
    assert.match(loser, new RegExp(`^held 75 server\\.provision is already running \\(pid ${winner.child.pid}, started \\d{4}-.*, lock ${path}\\); try again later or use --wait$`));
    const owner = JSON.parse(readFileSync(path, 'utf8'));
    assert.equal(owner.pid, winner.child.pid);
    assert.equal(owner.command, 'server.provision');
    winner.child.kill('SIGTERM');
    await Promise.all([a.done, b.done]);
  });

  it('a holder killed with SIGKILL is taken over at once, with no staleness wait', async () => {
    const path = join(dir, 'killed.lock');
    const a = await deadHolder(path);
    assert.ok(existsSync(path) && existsSync(`${path}.d`), 'a SIGKILLed holder leaves its lock behind');
    const lock = new PidLock(path);
    let warned: number | undefined;
    const started = Date.now();
    const handle = await lock.acquire({ command: 'test', onTakeOver: (o) => void (warned = o.pid) });
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal(warned, a.child.pid);
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    await handle.release();
    assert.ok(!existsSync(path) && !existsSync(`${path}.d`), 'release removes record and mutex dir');
  });

  it('a process killed during a takeover (its guard left behind) delays the next one by no staleness wait', async () => {
    const path = join(dir, 'guard.lock');
    await deadHolder(path);
    const g = guardHolder(`${path}.takeover`);
    let acquiring: Promise<unknown> | undefined;
    try {
      assert.equal(await g.ready, 'guarded');
      const lock = new PidLock(path);
      // While the guard's holder lives, the guard is its: a takeover waits.
      let took = 0;
      const taking = lock.acquire({ command: 'test', onTakeOver: () => void (took = Date.now()) });
      acquiring = taking.catch(() => {});
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(took, 0, 'a takeover went ahead under a live guard holder');
      assert.ok(existsSync(`${path}.takeover.d`), 'the live holder keeps its guard');
      const killed = Date.now();
      g.child.kill('SIGKILL');
      await g.done;
      const handle = await taking;
      // Before: the guard was removed only once stale, ~5 s after its last refresh.
      assert.ok(took > 0 && took - killed < 2000, `the takeover came ${took - killed} ms after the guard's holder died`);
      assert.ok(!existsSync(`${path}.takeover.d`), 'the dead guard is gone');
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('guard.lock.takeover.')), [], 'and the intent record its holder left');
      await handle.release();
    } finally {
      g.child.kill('SIGKILL');
      await g.done;
      await acquiring;
    }
  });

  it('five contenders after a holder and a guard holder both died: exactly one takes over, each then holds the lock in turn', async () => {
    const path = join(dir, 'five.lock');
    await deadHolder(path);
    const g = guardHolder(`${path}.takeover`);
    try {
      assert.equal(await g.ready, 'guarded');
    } finally {
      g.child.kill('SIGKILL');
      await g.done;
    }
    let takeovers = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const handle = await new PidLock(path).acquire({ command: 'test', waitMs: 20_000, pollMs: 20, onTakeOver: () => void takeovers++ });
        await new Promise((r) => setTimeout(r, 20));
        await handle.release();
      }),
    );
    assert.equal(takeovers, 1);
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('five.lock')), [], 'no lock, guard or record left');
  });

  it('a record whose PID was reused by another process counts as dead', async () => {
    const path = join(dir, 'reused.lock');
    const lock = new PidLock(path);
    const handle = await lock.acquire({ command: 'test' });
    // Pretend the holder was a process that started at another time with our PID.
    await handle.update({ pidStart: '1' });
    const probe = await new PidLock(path).probe();
    assert.equal(probe.state, 'dead');
    await handle.release();
  });

  it('--wait semantics: waits for the holder to finish, or gives up after the wait', async () => {
    const path = join(dir, 'wait.lock');
    const a = holder(path);
    assert.equal(await a.ready, 'locked');
    const lock = new PidLock(path);
    const t0 = Date.now();
    await assert.rejects(lock.acquire({ command: 'w', waitMs: 300, pollMs: 50 }), (e: unknown) => e instanceof LockHeldError && e.exitCode === 75);
    assert.ok(Date.now() - t0 >= 290);
    setTimeout(() => a.child.kill('SIGTERM'), 300);
    const handle = await lock.acquire({ command: 'w', waitMs: 10_000, pollMs: 50 });
    await handle.release();
    await a.done;
  });
});
