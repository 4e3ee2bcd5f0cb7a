// lock/sync-fs: proper-lockfile's fs, its callback calls made of node:fs's synchronous ones. The
// same results and errors as node:fs's own callbacks, given before the call returns; and
// proper-lockfile locks, refuses a second holder and frees with it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDirEach } from '../../helpers/temp.js';
import lockfile from 'proper-lockfile';
import { lockFs } from '../../../src/lock/sync-fs.js';

type Call = (...args: unknown[]) => void;

/** [err, result] of a callback call, and whether the callback came before the call returned. */
function called(f: Call, args: unknown[]): { err: NodeJS.ErrnoException | null; result: unknown; sync: boolean } {
  let out: { err: NodeJS.ErrnoException | null; result: unknown } | undefined;
  f(...args, (err: NodeJS.ErrnoException | null, result: unknown) => (out = { err, result }));
  const sync = out !== undefined;
  return { ...out!, sync };
}

describe('lock/sync-fs', () => {
  const dir = tempDirEach('lockfs');

  it("answers as node:fs's callbacks do, before the call returns: mkdir, stat, utimes, rmdir, realpath, and their errors", async () => {
    const d = join(dir(), 'x.lock');
    const made = called(lockFs.mkdir as unknown as Call, [d]);
    assert.deepEqual([made.err, made.sync], [null, true]);
    assert.equal(called(lockFs.mkdir as unknown as Call, [d]).err?.code, 'EEXIST');
    const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    assert.equal(called(lockFs.utimes as unknown as Call, [d, when, when]).err, null);
    const st = called(lockFs.stat as unknown as Call, [d]);
    assert.equal((st.result as fs.Stats).mtime.getTime(), when.getTime());
    assert.equal(called(lockFs.realpath as unknown as Call, [d]).result, fs.realpathSync(d));
    assert.equal(called(lockFs.rmdir as unknown as Call, [d]).err, null);
    for (const name of ['stat', 'rmdir', 'utimes', 'realpath'] as const) {
      const args = name === 'utimes' ? [d, when, when] : [d];
      const ours = called(lockFs[name] as unknown as Call, args);
      const theirs = await new Promise<NodeJS.ErrnoException | null>((resolve) => (fs[name] as unknown as Call)(...args, (err: NodeJS.ErrnoException | null) => resolve(err)));
      assert.equal(ours.err?.code, 'ENOENT', name);
      assert.equal(ours.err?.code, theirs?.code, name);
    }
  });

  it('proper-lockfile takes a lock with it, refuses a second holder (ELOCKED), and frees it', async () => {
    const target = join(dir(), 'run.lock');
    const options = { lockfilePath: `${target}.d`, realpath: false, retries: 0, fs: lockFs, onCompromised: () => {} };
    const release = await lockfile.lock(target, options);
    assert.ok(fs.statSync(`${target}.d`).isDirectory());
    await assert.rejects(lockfile.lock(target, options), { code: 'ELOCKED' });
    await release();
    assert.equal(fs.existsSync(`${target}.d`), false);
  });

  it("proper-lockfile's refresh runs with it: a lock whose dir is taken away is reported compromised (ECOMPROMISED) by the next refresh", async () => {
    const target = join(dir(), 'guard');
    let compromised: (err: NodeJS.ErrnoException) => void = () => {};
    const seen = new Promise<NodeJS.ErrnoException>((resolve) => (compromised = resolve));
    // The guard's settings scaled down: stale 2 s, refreshed every 0.5 s.
    const release = await lockfile.lock(target, { lockfilePath: `${target}.d`, realpath: false, retries: 0, stale: 2000, update: 500, fs: lockFs, onCompromised: compromised });
    fs.rmdirSync(`${target}.d`);
    // proper-lockfile's refresh timer is unref'd: this one (ref'd) keeps the test's event loop
    // alive until the refresh has come, 5 s at most.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no refresh within 5 s')), 5000)));
    try {
      const err = await Promise.race([seen, timeout]);
      assert.equal(err.code, 'ECOMPROMISED');
    } finally {
      clearTimeout(timer);
    }
    await assert.rejects(release(), { code: 'ERELEASED' });
  });
});
