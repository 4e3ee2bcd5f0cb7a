// Issue #23, what an operator sees, black-box through bin/bootstrap: an upgrade's versions in its
// dry run, the ini's version beside the one in force, ages in server.status, services handed over
// by bootstrap-detach (and the run naming what it ended), the callback key's documented rule
// (the snippets of docs/callbacks.md run against what the agent signs), stack traces naming the installed bundle.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ended, isRunning, json, root } from '../helpers/cli.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';
import { jsonReceiver } from '../helpers/servers.js';

const withHaproxy = (version: string, extra = '') => iniWith({}, extra).replace(/^version = 2\.6$/m, `version = ${version}`);

describe('versions: an upgrade dry run names them; the ini version beside the one in force', () => {
  it(
    'product.upgrade --dry-run says haproxy 2.6 → 2.8 (and --json upgrade); a refresh does not',
    withBox(withHaproxy('2.6'), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-ok'), 'true');
      assert.equal((await box.run(['server.provision'])).code, 0);
      writeFileSync(box.config, withHaproxy('2.8'));
      const human = await box.run(['product.upgrade', 'haproxy', '--dry-run']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^upgrade: haproxy 2\.6 → 2\.8\n/);
      const dry = json(await box.run(['product.upgrade', 'haproxy', '--dry-run', '--json']));
      assert.equal(dry.action, 'upgrade');
      assert.deepEqual(dry.upgrade, { product: 'haproxy', from: '2.6', to: '2.8' });
      assert.deepEqual(json(await box.run(['product.upgrade', 'haproxy', '--to', '3.0', '--dry-run', '--json'])).upgrade, { product: 'haproxy', from: '2.6', to: '3.0' });
      const refresh = json(await box.run(['server.refresh', '--dry-run', '--json']));
      assert.deepEqual([refresh.action, refresh.upgrade], ['refresh', null]);
      assert.doesNotMatch((await box.run(['server.refresh', '--dry-run'])).stdout, /upgrade:/);
      // The dry run changed nothing: the version in force is still 2.6.
      assert.equal(json(await box.run(['server.status', '--json'])).products.find((p: any) => p.name === 'haproxy').version, '2.6');
    }),
  );

  it(
    'an ini version other than the one in force: server.status and product.get say so (declared_version) and name product.upgrade',
    withBox(withHaproxy('2.6'), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-ok'), 'true');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const same = json(await box.run(['server.status', '--json'])).products.find((p: any) => p.name === 'haproxy');
      assert.deepEqual(same, { name: 'haproxy', version: '2.6', declared_version: '2.6', enabled: true });
      assert.doesNotMatch((await box.run(['server.status'])).stdout, /declares/);
      writeFileSync(box.config, withHaproxy('2.8'));
      const hint = 'bootstrap.ini declares 2.8, state has 2.6: bootstrap product.upgrade haproxy applies it';
      const status = await box.run(['server.status']);
      assert.match(status.stdout, new RegExp(`^version: +${hint.replace(/\./g, '\\.')}$`, 'm'));
      assert.deepEqual(json(await box.run(['server.status', '--json'])).products.find((p: any) => p.name === 'haproxy'), { name: 'haproxy', version: '2.6', declared_version: '2.8', enabled: true });
      assert.ok((await box.run(['product.get', 'haproxy'])).stdout.split('\n')[0]!.endsWith(`(${hint})`));
      const get = json(await box.run(['product.get', 'haproxy', '--json'])).products[0];
      assert.deepEqual([get.version, get.declared_version], ['2.6', '2.8']);
      // Older in the ini: the upgrade it takes is a downgrade.
      writeFileSync(box.config, withHaproxy('2.4'));
      assert.match((await box.run(['server.status'])).stdout, /bootstrap\.ini declares 2\.4, state has 2\.6: bootstrap product\.upgrade haproxy --allow-downgrade applies it/);
      // Applied: the line goes.
      writeFileSync(box.config, withHaproxy('2.8'));
      assert.equal((await box.run(['product.upgrade', 'haproxy'])).code, 0);
      assert.doesNotMatch((await box.run(['server.status'])).stdout, /declares/);
    }),
  );
});

describe('server.status: how long ago', () => {
  it(
    'the last run, the heartbeat and the provisioning say their age, then the time',
    withBox(iniWith({}, '\n[heartbeat.ok]\ntype = exec\ncommand = true\n'), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-ok'), 'true');
      assert.equal((await box.run(['server.provision'])).code, 0);
      assert.equal((await box.run(['heartbeat.checkup'])).code, 0);
      const fresh = (await box.run(['server.status'])).stdout;
      const iso = '\\(\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)';
      assert.match(fresh, new RegExp(`^heartbeat: +healthy \\d+ s ago ${iso}$`, 'm'));
      assert.match(fresh, new RegExp(`^last run: +provision success \\d+ s ago ${iso} \\(`, 'm'));
      assert.match(fresh, new RegExp(`^provisioned: +yes, \\d+ s ago ${iso}$`, 'm'));
      // Older: minutes, hours, days.
      const file = join(box.stateDir, 'state.json');
      const state = JSON.parse(readFileSync(file, 'utf8'));
      const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
      state.last_checkup.finished_at = ago(3 * 60_000 + 10_000);
      state.last_run.finished_at = ago(2 * 3600_000 + 5 * 60_000);
      state.provisioned_at = ago(3 * 86400_000);
      writeFileSync(file, JSON.stringify(state));
      const old = (await box.run(['server.status'])).stdout;
      assert.match(old, /^heartbeat: +healthy 3 min ago \(/m);
      assert.match(old, /^last run: +provision success 2 h 5 min ago \(/m);
      assert.match(old, /^provisioned: +yes, 3 days ago \(/m);
    }),
  );
});

/** Waits (bounded) for a file to hold a line; its text. */
async function lineIn(path: string, withinMs = 10_000): Promise<string> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (text.endsWith('\n')) return text.trim();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path}: nothing written within ${withinMs} ms`);
}

describe('services a step starts: ended and named, unless handed over with bootstrap-detach', () => {
  it(
    'a backgrounded sleep is ended and named in the warning; one started by lib/bootstrap-detach outlives the run, without the marker, in its own session',
    withBox(iniWith({ kill_grace: 1 }), async (box, log) => {
      const service = join(box.dir, 'service.pid');
      const serviceLog = join(box.dir, 'service.log');
      const detach = join(root, 'lib', 'bootstrap-detach');
      script(join(box.phasesDir, 'configure.d', '10-background'), 'sleep 300 >/dev/null 2>&1 & echo $! >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '20-service'), `[ -e "$SERVICE_PID" ] || "${detach}" --log "${serviceLog}" sh -c 'echo started; echo $$ > "$SERVICE_PID.tmp"; mv "$SERVICE_PID.tmp" "$SERVICE_PID"; exec sleep 300'`);
      let pid = 0;
      try {
        const r = await box.run(['server.provision'], { env: { LOG: log, SERVICE_PID: service } });
        assert.equal(r.code, 0, r.stderr);
        pid = Number(await lineIn(service));
        const [background] = readLines(log).map(Number);
        assert.ok(await ended(background!, 5000), 'the backgrounded sleep was ended');
        assert.match(r.stderr, new RegExp(`ended 1 process\\(es\\) the run's steps left running: [^ ]+ \\(${background}\\) \\(to keep a service: bootstrap-detach`));
        assert.ok(isRunning(pid), 'the detached service outlived the run');
        const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
        assert.ok(!environ.some((e) => e.startsWith('BOOTSTRAP_RUN_ID=')), 'no run marker');
        assert.ok(environ.includes('BOOTSTRAP_PHASE=configure'), 'the rest of the environment is passed on');
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        assert.equal(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3], String(pid), 'a session of its own');
        assert.equal(await lineIn(serviceLog), 'started');
        // And the next run leaves it too.
        const again = await box.run(['server.refresh'], { env: { LOG: log, SERVICE_PID: service } });
        assert.equal(again.code, 0, again.stderr);
        assert.ok(isRunning(pid), 'still running after the next run');
      } finally {
        if (pid) {
          process.kill(pid, 'SIGKILL');
          await ended(pid, 5000);
        }
      }
    }),
  );

  it('bootstrap-detach: usage 64, a command not found 127, a log it cannot open 73', () => {
    const detach = join(root, 'lib', 'bootstrap-detach');
    const run = (args: string[]) => spawnSync(detach, args, { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run([]).status, 64);
    assert.equal(run(['--bogus', 'true']).status, 64);
    const missing = run(['no-such-command-here']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /no-such-command-here: command not found/);
    assert.equal(run(['--log', '/nonexistent-dir/x.log', 'true']).status, 73);
  });
});

/** The fenced code block of `language` in the callback verification text of docs/callbacks.md. */
function readmeSnippet(language: string): string {
  const readme = readFileSync(join(root, 'docs', 'callbacks.md'), 'utf8');
  const section = readme.slice(readme.indexOf('Verifying the signature'), readme.indexOf('Deduplicate on `id`'));
  const found = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(section);
  assert.ok(found, `docs/callbacks.md: a ${language} verification snippet`);
  return found[1]!;
}

describe('the callback key: the documented rule is what the agent signs with', () => {
  it('a key file with surrounding whitespace and CRLF: the docs/callbacks.md snippets (Node, Python, openssl) verify the signature from the file as is', async () => {
    const r = await jsonReceiver();
    const raw: { body: Buffer; signature: string }[] = [];
    r.server.prependListener('request', (req) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => raw.push({ body: Buffer.concat(chunks), signature: String(req.headers['x-bootstrap-signature-256']) }));
    });
    const box = withBox(iniWith({}, `\n[callback]\nurl = ${r.url}/hook\nsecret_file = callback.secret\ntimeout = 5\n`), async (b) => {
      const keyFile = join(b.dir, 'callback.secret');
      // Leading space and tab, inner space, a non-UTF-8 byte, CRLF and a blank line.
      const file = Buffer.concat([Buffer.from(' \tk3y with space'), Buffer.from([0xff]), Buffer.from('\r\n\n')]);
      writeFileSync(keyFile, file);
      chmodSync(keyFile, 0o600);
      script(join(b.phasesDir, 'configure.d', '10-ok'), 'true');
      assert.equal((await b.run(['server.provision'])).code, 0);
      assert.equal(raw.length, 1);
      const { body, signature } = raw[0]!;
      const key = Buffer.concat([Buffer.from('k3y with space'), Buffer.from([0xff])]);
      assert.equal(signature, `sha256=${createHmac('sha256', key).update(body).digest('hex')}`, 'the key: the bytes without the surrounding whitespace');
      assert.notEqual(signature, `sha256=${createHmac('sha256', file).update(body).digest('hex')}`);
      const bodyFile = join(b.dir, 'body.json');
      writeFileSync(bodyFile, body);
      const path = (snippet: string) => snippet.replaceAll('/etc/bootstrap/callback.secret', keyFile);
      // A wrong signature: the last digit changed (a signature that ends in 0 gets a 1, or 1 in 16 runs would check the right one).
      const wrong = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
      for (const [sig, expected] of [[signature, true], [wrong, false]] as const) {
        const node = join(b.dir, 'verify.cjs');
        writeFileSync(node, `${path(readmeSnippet('js'))}\nprocess.stdout.write(String(verified(require('node:fs').readFileSync(process.argv[2]), process.argv[3])));\n`);
        assert.equal(execFileSync(process.execPath, [node, bodyFile, sig], { encoding: 'utf8' }), String(expected), 'Node');
        const py = `${path(readmeSnippet('python'))}\nimport sys\nprint(verified(open(sys.argv[1], 'rb').read(), sys.argv[2]), end='')\n`;
        assert.equal(execFileSync('python3', ['-c', py, bodyFile, sig], { encoding: 'utf8' }), expected ? 'True' : 'False', 'Python');
        const sh = spawnSync('sh', ['-c', path(readmeSnippet('sh'))], { cwd: b.dir, env: { PATH: process.env['PATH'], signature: sig }, encoding: 'utf8' });
        assert.equal(sh.stdout.trim(), expected ? 'verified' : '', `openssl: ${sh.stderr}`);
      }
    });
    try {
      await box();
    } finally {
      await r.close();
    }
  });
});

describe('BOOTSTRAP_DEBUG stack traces name the installed bundle', () => {
  it('a copy of the package elsewhere: the trace names its dist/bootstrap.cjs, never the build path; the code cache holds no build path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-trace-'));
    try {
      const copy = join(dir, 'installed');
      mkdirSync(join(copy, 'dist'), { recursive: true });
      cpSync(join(root, 'bin'), join(copy, 'bin'), { recursive: true });
      for (const f of ['bootstrap.cjs', 'bootstrap.cjs.cache', 'bootstrap.cjs.query.cache']) cpSync(join(root, 'dist', f), join(copy, 'dist', f));
      const builtAt = join(root, 'dist', 'bootstrap.cjs');
      for (const cache of ['bootstrap.cjs.cache', 'bootstrap.cjs.query.cache']) assert.ok(!readFileSync(join(copy, 'dist', cache)).includes(builtAt), `${cache} names no build path`);
      // A fault from inside the bundle (not a BootstrapError): an internal error, 70, its trace with BOOTSTRAP_DEBUG.
      const hook = join(dir, 'fault.cjs');
      writeFileSync(hook, "require('node:fs').fstatSync = () => { throw new TypeError('injected fault'); };\n");
      const ini = join(dir, 'bootstrap.ini');
      writeFileSync(ini, iniWith());
      const args = ['--require', hook, join(copy, 'bin', 'bootstrap'), 'server.status', '--config', ini, '--state-dir', join(dir, 'state')];
      const traced = spawnSync(process.execPath, args, { env: { PATH: process.env['PATH'], BOOTSTRAP_DEBUG: '1' }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(traced.status, 70, traced.stderr);
      assert.match(traced.stderr, /TypeError: injected fault/);
      assert.ok(traced.stderr.includes(`${join(copy, 'dist', 'bootstrap.cjs')}:`), traced.stderr);
      assert.ok(!traced.stderr.includes(builtAt), traced.stderr);
      const quiet = spawnSync(process.execPath, args, { env: { PATH: process.env['PATH'] }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(quiet.status, 70);
      assert.doesNotMatch(quiet.stderr, /\n\s+at /, 'no trace without BOOTSTRAP_DEBUG');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
