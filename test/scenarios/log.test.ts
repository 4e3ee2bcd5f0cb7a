import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin, collect, json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { iniWith, script } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';

/** The JSON lines of a log file, each parsed (a line that is not JSON fails the test). */
function readJsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

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

  it('[log] file: JSON lines, 0600, every line flushed before exit, secrets masked; -q keeps stderr to warnings, not the file', async () => {
    const box = sandbox();
    const logFile = withLogFile(box);
    try {
      mkdirSync(box.phasesDir);
      await box.run(['product.set', 'haproxy.stats_password=pa55word-xyz']);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'i=0; while [ $i -lt 500 ]; do echo "line $i pa55word-xyz"; i=$((i+1)); done');
      const r = await box.run(['server.provision', '-q']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', '-q: nothing below warnings on stderr');
      assert.equal(statSync(logFile).mode & 0o777, 0o600);
      const all = readJsonLines(logFile);
      const lines = all.filter((e) => e.source === 'configure/10-a');
      assert.equal(lines.length, 500, 'every line reached the file before exit, -q or not');
      assert.equal(lines[499]!['message'], 'line 499 ********');
      assert.equal(lines[0]!['level'], 'info');
      assert.ok(lines[0]!['timestamp']);
      assert.equal(lines[0]!['line'], undefined, 'the console text is not repeated in the file');
      assert.doesNotMatch(readFileSync(logFile, 'utf8'), /pa55word-xyz/);
    } finally {
      box.cleanup();
    }
  });

  it('DEBUG=* or DIAGNOSTICS=* set for other tools: the log is only ours (winston says nothing of its own), on stderr and in the [log] file', async () => {
    const box = sandbox();
    const logFile = withLogFile(box);
    try {
      mkdirSync(box.phasesDir);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo "hello"');
      for (const env of [{ DEBUG: '*' }, { DIAGNOSTICS: '*' }, { DEBUG: 'winston:*' }]) {
        const r = await box.run(['server.provision'], { env });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /configure\/10-a \| hello/);
        assert.doesNotMatch(r.stderr, /winston/, JSON.stringify(env));
        assert.doesNotMatch(r.stdout, /winston/, JSON.stringify(env));
      }
      assert.doesNotMatch(readFileSync(logFile, 'utf8'), /winston/);
    } finally {
      box.cleanup();
    }
  });

  it('[log] file: every line carries server and level, a run\'s lines its run_id, a step\'s output phase and step; secrets masked in every field', async () => {
    const box = sandbox();
    const logFile = join(box.dir, 'log', 'bootstrap.log');
    const receiver = await httpStub();
    writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\n\n[callback]\nurl = ${receiver.url}/cb\ntimeout = 5\n`));
    try {
      mkdirSync(box.phasesDir);
      await box.run(['product.set', 'haproxy.stats_password=pa55word-xyz']);
      // A step whose very name holds the secret: masked in the source, step and message alike.
      script(join(box.phasesDir, 'configure.d', '10-pa55word-xyz'), 'echo "out pa55word-xyz"');
      script(join(box.phasesDir, 'post-configure.d', '20-b'), 'echo "from b"');
      const r = await box.run(['server.provision', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const runId = json(r).id;
      const all = readJsonLines(logFile);
      for (const e of all) {
        assert.equal(e['server'], 'test-01', JSON.stringify(e));
        assert.match(String(e['level']), /^(error|warn|info|debug)$/);
      }
      const out = all.find((e) => e['message'] === 'out ********');
      assert.deepEqual({ ...out, timestamp: undefined }, { timestamp: undefined, level: 'info', message: 'out ********', server: 'test-01', run_id: runId, source: 'configure/10-********', phase: 'configure', step: '10-********' });
      const b = all.find((e) => e['message'] === 'from b');
      assert.equal(b?.['phase'], 'post-configure');
      assert.equal(b?.['step'], '20-b');
      assert.equal(b?.['run_id'], runId);
      assert.ok(all.some((e) => e['run_id'] === runId && String(e['message']).startsWith(`run ${runId}: provision on test-01`)), 'the run\'s own lines carry run_id');
      assert.ok(all.some((e) => e['run_id'] === runId && String(e['message']).startsWith(`callback ${runId} delivered to`)), 'so does its callback\'s delivery');
      assert.doesNotMatch(readFileSync(logFile, 'utf8'), /pa55word-xyz/);
      assert.doesNotMatch(r.stderr, /pa55word-xyz/, 'nor on the console, in the step\'s name');
    } finally {
      box.cleanup();
      await receiver.close();
    }
  });

  it('[log] level is the file\'s: -v adds debug lines on stderr only; [log] level = debug adds them to the file even with -q', async () => {
    const box = sandbox();
    const logFile = withLogFile(box);
    try {
      mkdirSync(box.phasesDir);
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo step-a');
      const verbose = await box.run(['server.provision', '-v']);
      assert.equal(verbose.code, 0, verbose.stderr);
      assert.match(verbose.stderr, /debug: run lock .* taken for run/);
      const first = readJsonLines(logFile);
      assert.ok(first.some((e) => e['message'] === 'step-a'));
      assert.deepEqual(first.filter((e) => e['level'] === 'debug'), [], '-v: no debug line in the file');
      writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\nlevel = debug\n`));
      writeFileSync(logFile, '');
      const quiet = await box.run(['server.refresh', '-q']);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stderr, '', '-q still rules the console');
      const second = readJsonLines(logFile);
      assert.ok(second.some((e) => e['level'] === 'debug' && /^run lock .* taken for run/.test(String(e['message']))), 'debug lines in the file');
      assert.ok(second.some((e) => e['message'] === 'step-a'));
    } finally {
      box.cleanup();
    }
  });

  it('the shipped logrotate snippet, run by the real logrotate: rotated by rename, a run in progress keeps writing to the rotated file, files stay 0600', async () => {
    const box = sandbox();
    const logDir = join(box.dir, 'log');
    const logFile = join(logDir, 'bootstrap.log');
    writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\n`));
    const shipped = readFileSync(join(root, 'etc/logrotate.d/bootstrap'), 'utf8');
    assert.match(shipped, /^\/var\/log\/bootstrap\/\*\.log \{$/m);
    const conf = join(box.dir, 'logrotate.conf');
    writeFileSync(conf, shipped.replace('/var/log/bootstrap/*.log', `${logDir}/*.log`), { mode: 0o644 });
    const rotate = () => {
      const r = spawnSync('logrotate', ['-f', '-s', join(box.dir, 'logrotate.state'), conf], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    try {
      assert.equal(spawnSync('logrotate', ['-d', '-s', join(box.dir, 'debug.state'), join(root, 'etc/logrotate.d/bootstrap')]).status, 0, 'the shipped file parses');
      mkdirSync(box.phasesDir);
      const go = join(box.dir, 'go');
      script(join(box.phasesDir, 'configure.d', '10-a'), `echo before; while [ ! -e ${go} ]; do sleep 0.05; done; echo after`);
      const child = box.start(['server.provision']);
      const done = collect(child);
      // Rotated once the step has logged (60 s at most: 10 s of polls then rotating regardless
      // could rotate before the run had started on a loaded machine).
      const deadline = Date.now() + 60_000;
      while (!(existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"before"'))) {
        assert.ok(Date.now() < deadline, 'the step logged "before" within 60 s');
        await new Promise((x) => setTimeout(x, 25));
      }
      rotate();
      assert.ok(!existsSync(logFile), 'nocreate: bootstrap makes the next file itself');
      writeFileSync(go, '');
      assert.equal((await done).code, 0);
      const rotated = readJsonLines(`${logFile}.1`).map((e) => e['message']);
      assert.ok(rotated.includes('before') && rotated.includes('after'), 'the run went on writing to the rotated file');
      assert.equal(statSync(`${logFile}.1`).mode & 0o777, 0o600);
      assert.equal((await box.run(['server.refresh'])).code, 0);
      assert.equal(statSync(logFile).mode & 0o777, 0o600, 'a new file, made by bootstrap');
      rotate();
      assert.equal(statSync(`${logFile}.1`).mode & 0o777, 0o600);
      assert.equal(statSync(`${logFile}.2.gz`).mode & 0o777, 0o600, 'compressed one rotation later, still 0600');
      const unzipped = spawnSync('gzip', ['-dc', `${logFile}.2.gz`], { encoding: 'utf8' });
      assert.ok(unzipped.stdout.includes('"after"'));
      assert.ok(!existsSync(logFile));
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

/** Gives the box's config a `[log] file` in the box's dir, and returns its path. */
function withLogFile(box: Sandbox): string {
  const logFile = join(box.dir, 'bootstrap.log');
  writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\n`));
  return logFile;
}
