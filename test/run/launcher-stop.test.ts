// Stopping a step before the launcher's output relay has said who it is (its first line, `P`,
// comes through the relay itself, so a relay that is slow to be scheduled is not known yet). The
// relay is a child of the launcher like the step: taken for the step and swept by the run's
// marker, it died with the step's end line in its pipe, and the stop, the run and its error.d
// waited for that line forever (SIGTERM to the agent soon after a step started, on a loaded
// machine). Here a `cat` first on PATH that waits a second before it relays anything (the relay
// is `exec cat`) opens that window every time. ~3 s.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/log/log.js';
import { Launcher, type RawStepResult } from '../../src/pipeline/launcher.js';
import { isProcessAlive, sweepMarked } from '../../src/util/process.js';

function executable(path: string, body: string): void {
  writeFileSync(path, body);
  chmodSync(path, 0o755);
}

/** A phase dir with one long step, and a PATH whose `cat` (the relay) is slow to start. */
function setting(): { dir: string; phase: string; step: string; pidFile: string; env: NodeJS.ProcessEnv; marker: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-launcher-stop-'));
  const phase = join(dir, 'configure.d');
  const bin = join(dir, 'bin');
  mkdirSync(phase);
  mkdirSync(bin);
  const realCat = execFileSync('sh', ['-c', 'command -v cat'], { encoding: 'utf8' }).trim();
  executable(join(bin, 'cat'), `#!/bin/sh\nsleep 1\nexec ${realCat} "$@"\n`);
  const pidFile = join(dir, 'step.pid');
  const step = join(phase, '10-long');
  executable(step, `#!/bin/sh\necho $$ > "${pidFile}"\nsleep 60\n`);
  const id = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  return { dir, phase, step, pidFile, env: { PATH: `${bin}:${process.env['PATH']}`, BOOTSTRAP_TEST_STOP: id }, marker: `BOOTSTRAP_TEST_STOP=${id}` };
}

/** The step's result, or a failure naming the hang when no end line comes within 15 s. */
function settled(result: Promise<RawStepResult | 'skipped'>, why = 'the relay was taken for the step?'): Promise<RawStepResult | 'skipped'> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the file never ended: its end line was lost (${why})`)), 15_000);
  });
  return Promise.race([result, hang]).finally(() => clearTimeout(timer));
}

async function stopCase(abortBeforeStart: boolean): Promise<void> {
  const s = setting();
  const launcher = new Launcher(s.env, s.phase, { marker: s.marker, masker: silentLogger().masker });
  const stop = new AbortController();
  if (abortBeforeStart) stop.abort();
  try {
    const result = launcher.submit(s.step, { timeoutMs: 60_000, killGraceMs: 2000, signal: stop.signal, onLine: () => {} });
    if (!abortBeforeStart) {
      for (let i = 0; i < 6000 && !existsSync(s.pidFile); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(existsSync(s.pidFile), 'the step started');
      stop.abort(); // the relay has not relayed its first line yet: it waits a second
    }
    const r = await settled(result);
    assert.notEqual(r, 'skipped');
    if (r === 'skipped') return;
    assert.equal(r.aborted, true);
    assert.equal(r.error, null, 'the launcher went on (its relay was not killed)');
    assert.equal(r.signal, 'SIGTERM');
    // Stopped before it wrote its PID (a stop before the start may end it that soon), or after: not running.
    if (existsSync(s.pidFile)) assert.equal(isProcessAlive(Number(readFileSync(s.pidFile, 'utf8'))), false, 'the step was stopped');
    else assert.ok(abortBeforeStart, 'the step started');
  } finally {
    await sweepMarked(s.marker, 500);
    await Promise.race([launcher.close(), new Promise((r) => setTimeout(r, 5000))]);
    rmSync(s.dir, { recursive: true, force: true });
  }
}

describe('a step stopped before the output relay is known', () => {
  it('is stopped, and its end line comes, when the stop comes while it runs', () => stopCase(false));
  it('is stopped, and its end line comes, when the run was stopped before it started', () => stopCase(true));
});

describe('the output relay lost with an end line in its pipe', () => {
  it('fails the file (the launcher is told to end) instead of waiting for that line forever', async () => {
    const s = setting();
    const ids = join(s.dir, 'ids');
    // The step stops the relay (its sibling) and exits: its end line waits in the relay's pipe.
    const step = join(s.phase, '20-stops-relay');
    executable(step, `#!/bin/sh\nfor p in $(cat /proc/$PPID/task/$PPID/children); do [ "$p" = $$ ] || { kill -STOP "$p"; echo "$PPID $p" > "${ids}.tmp"; }; done\nmv "${ids}.tmp" "${ids}"\n`);
    const launcher = new Launcher({ PATH: process.env['PATH'], BOOTSTRAP_TEST_STOP: s.env['BOOTSTRAP_TEST_STOP'] }, s.phase, { marker: s.marker, masker: silentLogger().masker });
    try {
      const result = launcher.submit(step, { timeoutMs: 60_000, killGraceMs: 2000, onLine: () => {} });
      for (let i = 0; i < 400 && !existsSync(ids); i++) await new Promise((r) => setTimeout(r, 10));
      const [bash, relay] = readFileSync(ids, 'utf8').trim().split(' ').map(Number);
      // The launcher has written the end line once it waits for its next command with no step.
      for (let i = 0; i < 400 && readFileSync(`/proc/${bash}/task/${bash}/children`, 'utf8').trim() !== String(relay); i++) await new Promise((r) => setTimeout(r, 10));
      process.kill(relay!, 'SIGKILL');
      const r = await settled(result, 'a lost relay is not noticed');
      assert.notEqual(r, 'skipped');
      if (r !== 'skipped') assert.match(r.error ?? '', /the step launcher ended/);
    } finally {
      await sweepMarked(s.marker, 500);
      await Promise.race([launcher.close(), new Promise((r) => setTimeout(r, 5000))]);
      rmSync(s.dir, { recursive: true, force: true });
    }
  });
});
