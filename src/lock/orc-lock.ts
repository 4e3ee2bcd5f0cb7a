// os-refresh-config's own lock. os-collect-config runs os-refresh-config, which holds an
// exclusive flock(2) on /var/run/os-refresh-config.lock for the whole run. When that file exists,
// a bootstrap run holds the same flock too, so the two never run a tree at once. Node has no
// flock: util-linux's `flock` holds it for us, with `cat` reading a pipe from us, so the lock is
// released when we close the pipe — or die.

import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { LockHeldError } from '../errors.js';
import { sleep } from '../util/process.js';
import { childProcess } from '../util/lazy.js';

export interface OrcLock {
  release(): Promise<void>;
}

/** Takes the flock on `file` if it exists (null: nothing to take); 75 when it stays held. */
export async function takeOrcLock(file: string, waitMs: number | undefined, warn: (m: string) => void): Promise<OrcLock | null> {
  if (!file || !existsSync(file)) return null;
  const deadline = Date.now() + (waitMs ?? 0);
  for (;;) {
    const held = await tryOnce(file);
    if (held === 'missing') {
      warn(`${file} exists but util-linux's flock is not installed: os-refresh-config's lock is not taken`);
      return null;
    }
    if (held !== 'busy') return held;
    if (Date.now() >= deadline) throw new LockHeldError(file, null, 'os-refresh-config (os-collect-config?) is running: it holds');
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
}

async function tryOnce(file: string): Promise<OrcLock | 'busy' | 'missing'> {
  let child: ChildProcess;
  try {
    child = childProcess().spawn('flock', ['--exclusive', '--nonblock', file, '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'ignore'] });
  } catch {
    return 'missing';
  }
  const outcome = await new Promise<'locked' | 'busy' | 'missing'>((resolve) => {
    child.on('error', () => resolve('missing'));
    child.stdout!.setEncoding('utf8').once('data', () => resolve('locked'));
    child.on('exit', (code) => resolve(code === 127 ? 'missing' : 'busy'));
  });
  if (outcome !== 'locked') return outcome;
  child.stdout!.resume();
  return {
    release: async () => {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(timer);
    },
  };
}
