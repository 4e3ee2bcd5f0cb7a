import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin, sandbox } from '../helpers/cli.js';
import { iniWith, script } from '../helpers/phases.js';

describe('logging', () => {
  it('under systemd (JOURNAL_STREAM): <N> priorities, no colour, no timestamps; secrets masked', async () => {
    const box = sandbox(iniWith());
    try {
      mkdirSync(box.phasesDir);
      await box.run(['product.set', 'haproxy.stats_password=pa55word-xyz']);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo "hello pa55word-xyz"; exit 3');
      const r = await box.run(['server.provision'], { env: { JOURNAL_STREAM: '8:12345' } });
      assert.equal(r.code, 1);
      const lines = r.stderr.trimEnd().split('\n');
      assert.ok(lines.length >= 3, r.stderr);
      for (const l of lines) assert.match(l, /^<[3-7]>/, `priority prefix: ${l}`);
      assert.ok(lines.includes('<6>configure/10-a | hello ********'), r.stderr);
      assert.ok(lines.some((l) => l.startsWith('<3>configure/10-a failed: exit 3')), r.stderr);
      assert.doesNotMatch(r.stderr, /\x1b\[|\d{4}-\d\d-\d\dT\d\d:\d\d|pa55word-xyz/);
    } finally {
      box.cleanup();
    }
  });

  it('[log] file: JSON lines, 0600, every line flushed before exit, secrets masked; -q keeps stderr to warnings', async () => {
    const box = sandbox();
    const logFile = join(box.dir, 'bootstrap.log');
    writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\n`));
    try {
      mkdirSync(box.phasesDir);
      await box.run(['product.set', 'haproxy.stats_password=pa55word-xyz']);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'i=0; while [ $i -lt 500 ]; do echo "line $i pa55word-xyz"; i=$((i+1)); done');
      const r = await box.run(['server.provision', '-q']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', '-q: nothing below warnings on stderr');
      // -q applies to the file too (one level for the whole logger): nothing was logged.
      const verbose = await box.run(['server.provision']);
      assert.equal(verbose.code, 0);
      assert.equal(statSync(logFile).mode & 0o777, 0o600);
      const all = readFileSync(logFile, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
      const lines = all.filter((e) => e.source === 'configure/10-a');
      assert.equal(lines.length, 500, 'every line reached the file before exit');
      assert.equal(lines[499].message, 'line 499 ********');
      assert.equal(lines[0].level, 'info');
      assert.ok(lines[0].timestamp);
      assert.doesNotMatch(readFileSync(logFile, 'utf8'), /pa55word-xyz/);
    } finally {
      box.cleanup();
    }
  });

  it('on a terminal: a progress line during runs, none with -q', () => {
    const box = sandbox(iniWith());
    try {
      mkdirSync(box.phasesDir);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'sleep 0.7; echo done-a');
      script(join(box.phasesDir, 'configure.d', '20-b'), 'echo done-b');
      const env = { ...box.env, TERM: 'dumb' };
      const tty = spawnSync('script', ['-qec', `${process.execPath} ${bin} server.provision`, '/dev/null'], { env, encoding: 'utf8' });
      assert.equal(tty.status, 0, tty.stdout);
      assert.match(tty.stdout, /\[1\/2\] configure\/10-a {2}\d+s/);
      assert.match(tty.stdout, /done-a/);
      assert.match(tty.stdout, /provision success: 2 steps: 0 changed, 2 unchanged, 0 skipped, 0 failed/);
      const quiet = spawnSync('script', ['-qec', `${process.execPath} ${bin} server.provision -q`, '/dev/null'], { env, encoding: 'utf8' });
      assert.doesNotMatch(quiet.stdout, /\[1\/2\]/);
    } finally {
      box.cleanup();
    }
  });
});
