import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../src/agent.js';
import { asNobody, bin, json, runCli, sandbox } from '../helpers/cli.js';
import { filesUnder, iniWith, journals, readLines, recordingStep, script } from '../helpers/phases.js';
import { withBox } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';


describe('trust: files that run as root', () => {
  for (const [what, setup, pattern] of [
    ['a group-writable step', (d: string) => chmodSync(script(join(d, 'configure.d', '20-bad'), 'true'), 0o775), /configure\.d\/20-bad: writable by its group \(mode 775\)/],
    ['a world-writable companion', (d: string) => chmodSync(script(join(d, 'configure.d', '10-ok.check'), 'true'), 0o757), /10-ok\.check: writable by others \(mode 757\)/],
    ['a step owned by another user', (d: string) => chownSync(script(join(d, 'configure.d', '20-bad'), 'true'), 65534, 65534), /20-bad: owned by uid 65534, neither root nor the user running bootstrap/],
    ['a world-writable phase dir', (d: string) => chmodSync(join(d, 'configure.d'), 0o777), /configure\.d: directory writable by others \(mode 777\)/],
    ['an environment.d file writable by others', (d: string) => {
      mkdirSync(join(d, 'environment.d'));
      writeFileSync(join(d, 'environment.d', '10-env'), 'export A=1\n');
      chmodSync(join(d, 'environment.d', '10-env'), 0o666);
    }, /environment\.d\/10-env: writable by others/],
  ] as [string, (d: string) => void, RegExp][]) {
    it(
      `${what}: refused before any step with 77, shown by phases.list; allow_insecure runs it loudly`,
      withBox(iniWith(), async (box, log) => {
        recordingStep(box.phasesDir, 'configure', '10-ok');
        setup(box.phasesDir);
        const r = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(r.code, 77, r.stderr);
        assert.match(r.stderr, pattern);
        assert.match(r.stderr, /\(chmod go-w them and chown them to root, or set \[phases\] allow_insecure = true for development\)/);
        assert.deepEqual(readLines(log), [], 'no step ran');
        const list = await box.run(['phases.list']);
        assert.match(list.stdout, /REFUSED /);
        writeFileSync(box.config, iniWith({ allow_insecure: 'true' }));
        const allowed = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(allowed.code, 0, allowed.stderr);
        assert.match(allowed.stderr, /INSECURE \(allow_insecure = true\): running /);
      }),
    );
  }
});

describe('trust: programs named in bootstrap.ini run as root as steps do', () => {
  // The attacker's part: a file that uid 65534 owns and could rewrite (as nobody, so file modes count).
  const hostile = (dir: string, name: string) => {
    const path = script(join(dir, name), `echo "${name} ran as $(id -u)" >> "${join(dir, 'ran.log')}"`, 0o777);
    chownSync(path, 65534, 65534);
    const rewrite = spawnSync(asNobody[0]!, [...asNobody.slice(1), 'sh', '-c', `echo '# nobody was here' >> '${path}'`]);
    assert.equal(rewrite.status, 0, `nobody can rewrite ${path}: ${rewrite.stderr}`);
    return path;
  };

  it(
    'an untrusted reboot_command (by path, bare on PATH, or the script of an interpreter) refuses the run with 77 naming the key; phases.list shows it; allow_insecure runs it loudly',
    withBox(iniWith(), async (box, log) => {
      const tools = join(box.dir, 'bin');
      chmodSync(box.dir, 0o711); // nobody reaches the file it owns
      mkdirSync(tools, { mode: 0o755 });
      const reboot = hostile(tools, 'reboot.sh');
      recordingStep(box.phasesDir, 'configure', '10-ask', 'echo kernel > "$BOOTSTRAP_REBOOT_FILE"');
      for (const command of [reboot, 'reboot.sh now', `/bin/sh ${reboot}`]) {
        writeFileSync(box.config, iniWith({ reboot_command: command }));
        const env = { LOG: log, PATH: `${tools}:${process.env['PATH']}` };
        const r = await box.run(['server.provision'], { env });
        assert.equal(r.code, 77, `${command}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`${reboot.replace(/[.]/g, '\\.')} \\(named by \\[phases\\] reboot_command\\): owned by uid 65534`));
        assert.deepEqual(readLines(log), [], 'no step ran');
        assert.ok(!existsSync(join(tools, 'ran.log')), 'the reboot command never ran');
        const list = await box.run(['phases.list'], { env });
        assert.equal(list.code, 77);
        assert.match(list.stdout, /REFUSED .*reboot\.sh \(named by \[phases\] reboot_command\): owned by uid 65534/);
        const listed = json(await box.run(['phases.list', '--json'], { env }));
        assert.deepEqual(listed.refused.map((x: any) => [x.path, x.key, x.kind]), [[reboot, '[phases] reboot_command', 'insecure']]);
        const dry = await box.run(['server.provision', '--dry-run'], { env });
        assert.equal(dry.code, 77);
      }
      writeFileSync(box.config, iniWith({ reboot_command: reboot, allow_insecure: 'true' }));
      const allowed = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stderr, /INSECURE \(allow_insecure = true\): running .*reboot\.sh/);
      assert.match(readFileSync(join(tools, 'ran.log'), 'utf8'), /reboot\.sh ran as 0/);
    }),
  );

  it(
    'an untrusted exec heartbeat: heartbeat.get and heartbeat.checkup refuse with 77 naming the key, runs and phases.list too; it runs with the agent\'s environment',
    withBox(iniWith(), async (box) => {
      const tools = join(box.dir, 'bin');
      chmodSync(box.dir, 0o711); // nobody reaches the file it owns
      mkdirSync(tools, { mode: 0o755 });
      const check = hostile(tools, 'check.sh');
      script(join(tools, 'good.sh'), 'echo "agent env: $FROM_AGENT"');
      writeFileSync(box.config, iniWith({}, `\n[heartbeat.good]\ntype = exec\ncommand = good.sh\n\n[heartbeat.bad]\ntype = exec\ncommand = ${check}\n`));
      const env = { PATH: `${tools}:${process.env['PATH']}`, FROM_AGENT: 'yes' };
      for (const args of [['heartbeat.get', 'bad'], ['heartbeat.checkup'], ['server.provision'], ['phases.list']]) {
        const r = await box.run(args, { env });
        assert.equal(r.code, 77, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout + r.stderr, /check\.sh \(named by \[heartbeat\.bad\] command\): owned by uid 65534/);
      }
      assert.ok(!existsSync(join(tools, 'ran.log')), 'the untrusted check never ran');
      const r = await box.run(['heartbeat.get', 'good', '--json'], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(json(r).results[0].detail, 'agent env: yes');
      // Through the library: the Agent's env, not the process's, gives the PATH and the variables.
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: { PATH: `${tools}:/usr/bin:/bin`, FROM_AGENT: 'library' } });
      assert.equal((await agent.heartbeatGet(['good'])).results[0]!.detail, 'agent env: library');
    }),
  );
});

describe('trust: what a launcher or an interpreter in bootstrap.ini would run', () => {
  it(
    'every file named by the arguments of an interpreter or launcher (options skipped, after --, VAR=FILE, PATH, sh -c words) is judged: an attacker\'s script in a sticky dir never runs; data files of other programs are not judged',
    withBox(iniWith(), async (box, log) => {
      chmodSync(box.dir, 0o711); // nobody reaches the sticky dir
      const ww = join(box.dir, 'ww');
      mkdirSync(ww);
      chmodSync(ww, 0o1777);
      const ran = join(box.dir, 'ran.log');
      const evil = join(ww, 'evil.sh');
      const data = join(ww, 'app.log');
      // The attacker (uid 65534) writes the script and a data file, in a dir anyone may write.
      const made = spawnSync(asNobody[0]!, [...asNobody.slice(1), 'sh', '-c', `printf '#!/bin/sh\\necho "evil ran as $(id -u)" >> ${ran}\\n' > ${evil}; chmod 777 ${evil}; echo data > ${data}`]);
      assert.equal(made.status, 0, String(made.stderr));
      recordingStep(box.phasesDir, 'configure', '10-ask', 'echo kernel > "$BOOTSTRAP_REBOOT_FILE"');
      const env = { LOG: log, PATH: `${ww}:${process.env['PATH']}` };
      const smuggled = [`/bin/sh -e ${evil}`, `/usr/bin/env ${evil}`, `/bin/sh -- ${evil}`, 'env FOO=1 evil.sh', `nice -n 5 sh -c "x=1 && exec ${evil}"`, `/usr/bin/env LD_PRELOAD=${evil} true`, `timeout 30 bash --rcfile=${evil} -i`];
      const named = (key: string) => new RegExp(`${evil.replace(/[.]/g, '\\.')} \\(named by ${key.replace(/[[\].]/g, '\\$&')}\\): owned by uid 65534`);
      for (const command of smuggled) {
        writeFileSync(box.config, iniWith({ reboot_command: command }));
        const r = await box.run(['server.provision'], { env });
        assert.equal(r.code, 77, `${command}: ${r.stderr}`);
        assert.match(r.stderr, named('[phases] reboot_command'), command);
        assert.deepEqual(readLines(log), [], 'no step ran');
      }
      writeFileSync(box.config, iniWith({}, `\n[heartbeat.bad]\ntype = exec\ncommand = /usr/bin/env ${evil}\n`));
      const beat = await box.run(['heartbeat.get', 'bad'], { env });
      assert.equal(beat.code, 77, beat.stdout + beat.stderr);
      assert.match(beat.stdout + beat.stderr, named('[heartbeat.bad] command'));
      assert.ok(!existsSync(ran), 'the attacker\'s script never ran');
      // Ordinary configs still work: a shell one-liner, and a data file given to a program that is no launcher.
      writeFileSync(box.config, iniWith({ reboot_command: 'sh -c "df -P / | tail -1"' }, `\n[heartbeat.age]\ntype = exec\ncommand = ls -l ${data}\n`));
      const list = await box.run(['phases.list'], { env });
      assert.equal(list.code, 0, list.stdout + list.stderr);
      const age = await box.run(['heartbeat.get', 'age', '--json'], { env });
      assert.equal(age.code, 0, age.stdout + age.stderr);
      assert.equal(json(age).results[0].healthy, true);
    }),
  );
});

describe('trust: the callback key file', () => {
  it(
    'a key file another user owns (so can read and replace), a symlink, or one in a dir another user owns is refused (78) naming [callback] secret_file; nothing runs or is sent',
    withBox(iniWith(), async (box, log) => {
      const received: string[] = [];
      const receiver = await httpStub((req, res) => {
        received.push(String(req.url));
        req.resume();
        res.end();
      });
      try {
        chmodSync(box.dir, 0o711); // nobody reaches the key
        recordingStep(box.phasesDir, 'configure', '10-ok');
        const key = join(box.dir, 'cb.key');
        writeFileSync(key, 'KEY-of-nobody\n', { mode: 0o600 });
        chownSync(key, 65534, 65534);
        // The attacker can read it and replace it: callbacks signed with it could be forged.
        const stolen = spawnSync(asNobody[0]!, [...asNobody.slice(1), 'sh', '-c', `cat ${key} && echo KEY-forged > ${key}`]);
        assert.equal(stolen.status, 0, String(stolen.stderr));
        assert.equal(String(stolen.stdout), 'KEY-of-nobody\n');
        const keyDir = join(box.dir, 'nobodys');
        mkdirSync(keyDir, { mode: 0o700 });
        writeFileSync(join(keyDir, 'cb.key'), 'KEY-in-their-dir', { mode: 0o600 });
        chownSync(keyDir, 65534, 65534);
        const real = join(box.dir, 'real.key');
        writeFileSync(real, 'KEY-real', { mode: 0o600 });
        const link = join(box.dir, 'link.key');
        symlinkSync(real, link);
        for (const [file, pattern] of [
          [key, /\[callback\] secret_file: .*cb\.key cannot be trusted: .*cb\.key owned by uid 65534/],
          [join(keyDir, 'cb.key'), /\[callback\] secret_file: .*nobodys\/cb\.key cannot be trusted: .*nobodys directory owned by uid 65534/],
          [link, /\[callback\] secret_file: .*link\.key is a symlink/],
        ] as [string, RegExp][]) {
          writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = ${receiver.url}/cb\nsecret_file = ${file}\n`));
          for (const args of [['server.provision'], ['heartbeat.checkup', '--report']]) {
            const r = await box.run(args, { env: { LOG: log } });
            assert.equal(r.code, 78, `${file} ${args.join(' ')}: ${r.stderr}`);
            assert.match(r.stderr, pattern);
          }
        }
        assert.deepEqual(readLines(log), [], 'no step ran');
        assert.deepEqual(received, [], 'nothing was sent');
        writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = ${receiver.url}/cb\nsecret_file = ${real}\n`));
        const good = await box.run(['server.provision'], { env: { LOG: log } });
        assert.equal(good.code, 0, good.stderr);
        assert.equal(received.length, 1);
      } finally {
        await receiver.close();
      }
    }),
  );
});

describe('hostile phases', () => {
  it(
    'FIFOs, devices, directories named like steps and symlink loops are skipped with the reason',
    withBox(iniWith(), async (box) => {
      const dir = join(box.phasesDir, 'configure.d');
      mkdirSync(dir, { recursive: true });
      spawnSync('mkfifo', [join(dir, '10-fifo')]);
      symlinkSync('/dev/null', join(dir, '20-device'));
      mkdirSync(join(dir, '30-dir'));
      symlinkSync(join(dir, '40-loop'), join(dir, '40-loop'));
      const plan = json(await box.run(['phases.list', '--json']));
      const skipped = Object.fromEntries(plan.phases[1].skipped.map((s: any) => [s.name, s.reason]));
      assert.deepEqual(skipped, { '10-fifo': 'not a regular file', '20-device': 'not a regular file', '30-dir': 'directory', '40-loop': 'symlink loop' });
      assert.equal((await box.run(['server.provision'])).code, 0);
    }),
  );

  it(
    'a step with no #! line is refused (78) naming it; a missing interpreter fails the run reporting 126/127',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-noshebang'), 'echo hi\n'.replace(/^/, ''), 0o755);
      writeFileSync(join(box.phasesDir, 'configure.d', '10-noshebang'), 'echo no shebang\n');
      const r = await box.run(['server.provision']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /10-noshebang: has no #! line and is not a program/);
      assert.match(r.stderr, /set \[phases\] no_shebang = sh to run such files with \/bin\/sh/);
      // The opt-in: run with /bin/sh, $0 its absolute path, as under os-refresh-config.
      writeFileSync(join(box.phasesDir, 'configure.d', '10-noshebang'), 'echo "no shebang $0" > "$LOG"\n');
      writeFileSync(box.config, iniWith({ no_shebang: 'sh' }));
      const log = join(box.dir, 'log');
      const ok = await box.run(['server.provision'], { env: { LOG: log } });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(readFileSync(log, 'utf8'), `no shebang ${join(box.phasesDir, 'configure.d', '10-noshebang')}\n`);
      writeFileSync(box.config, iniWith());
      rmSync(join(box.phasesDir, 'configure.d', '10-noshebang'));
      script(join(box.phasesDir, 'configure.d', '10-nointerp'), '#!/nonexistent/interpreter\necho x\n');
      const missing = await box.run(['server.provision', '--json']);
      assert.equal(missing.code, 1);
      assert.match(json(missing).failure.message, /^exit 12[67] \(/);
    }),
  );

  it(
    'HOME unset, a minimal PATH, a non-UTF-8 locale and an odd TZ change nothing',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-env'), `echo "ok $BOOTSTRAP_ACTION" >> "${join(box.dir, 'steps.log')}"`);
      const r = await runCli(['server.provision', '--json'], {
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'en_US.ISO-8859-1', LANG: 'C', TZ: 'Mars/Olympus_Mons', BOOTSTRAP_CONFIG: box.config, BOOTSTRAP_STATE_DIR: box.stateDir, BOOTSTRAP_PHASES_DIR: box.phasesDir },
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(readLines(log), ['ok provision']);
      assert.match(json(r).started_at, /^\d{4}-\d\d-\d\dT.*Z$/);
    }),
  );

  it('a product with no settings is fine; a NUL byte in a value is refused (65)', async () => {
    const box = sandbox(iniWith({}, '\n[product.bare]\nversion = 1\n'));
    try {
      const r = await box.run(['product.get', 'bare', '--json']);
      assert.equal(r.code, 0);
      assert.deepEqual(json(r).products[0].settings, []);
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: {} });
      await assert.rejects(agent.productSet({ pairs: ['haproxy.stats_password=a\0b'] }), (e: any) => e.exitCode === 65 && /NUL/.test(e.message));
    } finally {
      box.cleanup();
    }
  });
});

describe('the state dir', () => {
  it('is created 0700 with files 0600 under any umask; a looser one is tightened with a warning', async () => {
    const box = sandbox(iniWith());
    mkdirSync(box.phasesDir);
    try {
      for (const umask of ['000', '777']) {
        rmSync(box.stateDir, { recursive: true, force: true });
        const r = spawnSync('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, bin, 'server.provision', '-q'], { env: box.env, encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        for (const d of ['', 'runs', 'outbox', 'outbox/dead']) assert.equal(statSync(join(box.stateDir, d)).mode & 0o777, 0o700, `umask ${umask}: ${d || 'state dir'}`);
        for (const [f] of filesUnder(box.stateDir)) assert.equal(statSync(f).mode & 0o777, 0o600, `umask ${umask}: ${f}`);
      }
      chmodSync(box.stateDir, 0o755);
      const r = await box.run(['product.set', 'haproxy.maxconn=1']);
      assert.equal(r.code, 0);
      assert.match(r.stderr, /state dir .* had mode 755; tightened to 700/);
      assert.equal(statSync(box.stateDir).mode & 0o777, 0o700);
    } finally {
      box.cleanup();
    }
  });

  it("runs/ is created with ext4's T attribute (each run's changes dir in a block group of its own); where the filesystem has no such attribute the run goes on without it", async () => {
    const box = sandbox(iniWith());
    mkdirSync(box.phasesDir);
    try {
      const r = await box.run(['server.provision', '-q']);
      assert.equal(r.code, 0, r.stderr);
      const fsType = spawnSync('stat', ['-f', '-c', '%T', box.stateDir], { encoding: 'utf8' }).stdout.trim();
      const attrs = spawnSync('lsattr', ['-d', join(box.stateDir, 'runs')], { encoding: 'utf8' });
      if (fsType.startsWith('ext')) assert.match(attrs.stdout, /^\S*T\S* /, `${fsType}: ${attrs.stdout}${attrs.stderr}`);
      else assert.doesNotMatch(attrs.stdout, /^\S*T\S* /, `${fsType} has no T attribute`);
      // A filesystem that refuses the attribute (tmpfs): the state dir is made all the same.
      const shm = mkdtempSync('/dev/shm/bootstrap-test-');
      try {
        const state = join(shm, 'state');
        const r2 = await box.run(['server.provision', '-q', '--state-dir', state]);
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(r2.stderr, '');
        assert.equal(statSync(join(state, 'runs')).mode & 0o777, 0o700);
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    } finally {
      box.cleanup();
    }
  });

  it('as an unprivileged user: a root-owned state dir is refused (77), and so is --reveal', async () => {
    const open = mkdtempSync(join(tmpdir(), 'bootstrap-open-'));
    try {
      chmodSync(open, 0o755);
      const ini = join(open, 'bootstrap.ini');
      writeFileSync(ini, iniWith());
      chmodSync(ini, 0o644);
      const state = join(open, 'state');
      mkdirSync(state, { mode: 0o700 });
      const env = { PATH: process.env['PATH'], BOOTSTRAP_CONFIG: ini, BOOTSTRAP_STATE_DIR: state };
      const set = await runCli(['product.set', 'haproxy.maxconn=1'], { env, prefix: asNobody });
      assert.equal(set.code, 77, set.stderr);
      assert.match(set.stderr, /belongs to uid 0, not to the user running bootstrap \(uid 65534\)|permission denied/);
      const reveal = await runCli(['product.get', '--reveal'], { env, prefix: asNobody });
      assert.equal(reveal.code, 77, reveal.stderr);
      assert.match(reveal.stderr, /--reveal shows secrets only to root or the owner of the state dir/);
      const mine = join(open, 'mine');
      mkdirSync(mine, { mode: 0o700 });
      chownSync(mine, 65534, 65534);
      const ok = await runCli(['product.set', 'haproxy.maxconn=2'], { env: { ...env, BOOTSTRAP_STATE_DIR: mine }, prefix: asNobody });
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  it('disk full while writing state (fault-injection seam): the old state.json survives and the error says so', async () => {
    const box = sandbox(iniWith());
    try {
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: {} });
      await agent.productSet({ pairs: ['haproxy.maxconn=111'] });
      const before = readFileSync(join(box.stateDir, 'state.json'), 'utf8');
      for (const step of ['write', 'fsync', 'rename'] as const) {
        const full = new Agent({
          config: box.config,
          stateDir: box.stateDir,
          env: {},
          stateWriteHooks: { beforeStep: (s) => void (s === step && (() => { throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }); })()) },
        });
        await assert.rejects(full.productSet({ pairs: ['haproxy.maxconn=222'] }), (e: any) => e.exitCode === 73 && /no space left on device.*previous state file is intact/.test(e.describe()));
        assert.equal(readFileSync(join(box.stateDir, 'state.json'), 'utf8'), before, `intact after a failure at ${step}`);
        assert.deepEqual(readdirSync(box.stateDir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
      }
    } finally {
      box.cleanup();
    }
  });

  it('disk full for real (a small tmpfs, where the machine allows mounting one)', async (t) => {
    const mnt = mkdtempSync(join(tmpdir(), 'bootstrap-tmpfs-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]).status !== 0) {
      rmSync(mnt, { recursive: true, force: true });
      t.skip('cannot mount a tmpfs here');
      return;
    }
    const box = sandbox(iniWith());
    try {
      const env = { BOOTSTRAP_STATE_DIR: join(mnt, 'state') };
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=111'], { env })).code, 0);
      const before = readFileSync(join(mnt, 'state', 'state.json'), 'utf8');
      spawnSync('sh', ['-c', `cat /dev/zero > "${join(mnt, 'filler')}"`]); // fill it up
      const r = await box.run(['product.set', `haproxy.stats_password=${'x'.repeat(100_000)}`], { env });
      assert.equal(r.code, 73, r.stderr);
      assert.match(r.stderr, /no space left on device \(free some disk space; the previous state file is intact\)/);
      assert.equal(readFileSync(join(mnt, 'state', 'state.json'), 'utf8'), before);
    } finally {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
      box.cleanup();
    }
  });
});

describe('secrets go nowhere', () => {
  it(
    'a secret setting, the callback key and a token in the callback URL appear only in the 0600 snapshot during the run (and the setting in state.json, its store)',
    withBox(iniWith({}, ''), async (box) => {
      const received: string[] = [];
      const receiverStub = await httpStub((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          received.push(`${req.url} ${JSON.stringify(req.headers)} ${body}`);
          res.end();
        });
      });
      const logFile = join(box.dir, 'bootstrap.log');
      writeFileSync(join(box.dir, 'cb.key'), 'KEY-0f-callback');
      chmodSync(join(box.dir, 'cb.key'), 0o600);
      writeFileSync(
        box.config,
        iniWith({}, `\n[product.vault]\nversion = 1\n\n[product.vault.settings]\ntoken = secret:DEFAULT-s3cret-v4lue\n\n[callback]\nurl = ${receiverStub.url}/cb?token=URL-t0ken-in-query\nsecret_file = cb.key\n\n[log]\nfile = ${logFile}\nlevel = debug\n`),
      );
      const seen = join(box.dir, 'seen');
      script(
        join(box.phasesDir, 'configure.d', '10-leaky'),
        `env > "${seen}.env"; cp "$BOOTSTRAP_CONFIG_JSON" "${seen}.snapshot"; stat -c %a "$BOOTSTRAP_CONFIG_JSON" > "${seen}.mode"; echo "leak: SET-s3cret-v4lue DEFAULT-s3cret-v4lue"; echo "to stderr SET-s3cret-v4lue" >&2`,
      );
      try {
        const set = await box.run(['product.set', 'haproxy.stats_password=SET-s3cret-v4lue', '-v']);
        const run = await box.run(['server.provision', '-v', '--json']);
        const flagged = await box.run(['server.refresh', '-v', '--callback-url', `${receiverStub.url}/flag?token=FLAG-t0ken`]);
        const status = await box.run(['server.status', '--json']);
        const get = await box.run(['product.get', '--json']);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(received.length, 2);
        const printed = [set, run, flagged, status, get].map((r) => r.stdout + r.stderr).join('\n');
        const secrets = ['SET-s3cret-v4lue', 'DEFAULT-s3cret-v4lue', 'KEY-0f-callback', 'URL-t0ken-in-query', 'FLAG-t0ken'];
        const places: [string, string][] = [
          ['printed', printed],
          ['log file', readFileSync(logFile, 'utf8')],
          ['callback bodies', received.map((r) => r.slice(r.indexOf(' {'))).join('\n')],
          ['step environment', readFileSync(`${seen}.env`, 'utf8')],
          ...filesUnder(box.stateDir).filter(([f]) => !f.endsWith('/state.json')),
        ];
        for (const [where, text] of places) for (const s of secrets) assert.ok(!text.includes(s), `${s} found in ${where}`);
        assert.match(printed, /leak: \*\*\*\*\*\*\*\* \*\*\*\*\*\*\*\*/, 'step output echoing secrets is masked');
        // The snapshot had them, 0600, and is gone.
        assert.match(readFileSync(`${seen}.snapshot`, 'utf8'), /SET-s3cret-v4lue/);
        assert.equal(readFileSync(`${seen}.mode`, 'utf8').trim(), '600');
        assert.deepEqual(readdirSync(join(box.stateDir, 'runs')).filter((n) => n.endsWith('.config.json')), []);
        // state.json (0600) is where product.set keeps the setting, by the contract; the ini default stays in the ini.
        const state = readFileSync(join(box.stateDir, 'state.json'), 'utf8');
        for (const s of ['DEFAULT-s3cret-v4lue', 'KEY-0f-callback', 'URL-t0ken-in-query', 'FLAG-t0ken']) assert.ok(!state.includes(s), `${s} in state.json`);
        assert.equal(statSync(join(box.stateDir, 'state.json')).mode & 0o777, 0o600);
        assert.equal(journals(box.stateDir).length, 2);
      } finally {
        await receiverStub.close();
      }
    }),
  );
});

describe('the callback key is masked from the start', () => {
  it(
    'a step, an .if file (in a dry run too), an explorer and an exec check printing the callback key (or a secret setting) show ******** in output, log, journal, facts and callback bodies',
    withBox(iniWith(), async (box) => {
      const bodies: string[] = [];
      const receiver = await httpStub((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          bodies.push(body);
          res.end();
        });
      });
      try {
        const key = join(box.dir, 'cb.key');
        writeFileSync(key, 'KEY-0f-callback-printed\n', { mode: 0o600 });
        const logFile = join(box.dir, 'bootstrap.log');
        writeFileSync(box.config, iniWith({}, `\n[callback]\nurl = ${receiver.url}/cb\nsecret_file = ${key}\n\n[heartbeat.leak]\ntype = exec\ncommand = /bin/cat ${key}\n\n[log]\nfile = ${logFile}\nlevel = debug\n`));
        script(join(box.phasesDir, 'configure.d', '10-leak'), `echo "key: $(cat ${key})"; echo "changed $(cat ${key})" >> "$BOOTSTRAP_CHANGES"`);
        script(join(box.phasesDir, 'configure.d', '10-leak.if'), `echo "if: $(cat ${key})"; grep -o 'SET-s3cret-[a-z0-9]*' "$BOOTSTRAP_CONFIG_JSON"`);
        script(join(box.phasesDir, 'explorer.d', 'leak'), `cat ${key}`);
        const set = await box.run(['product.set', 'haproxy.stats_password=SET-s3cret-setting']);
        assert.equal(set.code, 0, set.stderr);
        const runs = [
          await box.run(['server.provision', '-v']),
          await box.run(['server.provision', '--dry-run', '-v']),
          await box.run(['server.facts', '--refresh', '--json']),
          await box.run(['heartbeat.get', 'leak', '--json']),
          await box.run(['runs.show', '--json']),
        ];
        assert.equal(runs[0]!.code, 0, runs[0]!.stderr);
        assert.equal(bodies.length, 1);
        const printed = runs.map((r) => r.stdout + r.stderr).join('\n');
        assert.match(printed, /key: \*\*\*\*\*\*\*\*/, 'the step\'s output was logged, masked');
        for (const [where, text] of [['printed', printed], ['log file', readFileSync(logFile, 'utf8')], ['callback body', bodies.join('\n')], ...filesUnder(box.stateDir)] as [string, string][]) {
          assert.ok(!text.includes('KEY-0f-callback-printed'), `the key is in ${where}`);
          if (!where.endsWith('/state.json')) assert.ok(!text.includes('SET-s3cret-setting'), `the secret setting is in ${where}`);
        }
      } finally {
        await receiver.close();
      }
    }),
  );
});

describe('one verdict for a plan', () => {
  it(
    'phases.list, --dry-run and the run agree: same exit code, every refused file named',
    withBox(iniWith(), async (box) => {
      recordingStep(box.phasesDir, 'configure', '10-ok');
      chmodSync(script(join(box.phasesDir, 'configure.d', '20-open'), 'true'), 0o777);
      chmodSync(script(join(box.phasesDir, 'post-configure.d', '10-open'), 'true'), 0o757);
      const results = [await box.run(['phases.list']), await box.run(['server.provision', '--dry-run']), await box.run(['server.provision'])];
      for (const r of results) {
        assert.equal(r.code, 77, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /refusing to run 2 files: .*configure\.d\/20-open: writable by others \(mode 777\); .*post-configure\.d\/10-open: writable by others/);
      }
      assert.match(results[1]!.stdout, /dry run: refused/);
      const listed = await box.run(['phases.list', '--json']);
      assert.equal(listed.code, 77);
      assert.match(json(listed).refusal, /refusing to run 2 files/);
    }),
  );
});
