import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { parseConfig, type Config } from '../../src/config/config.js';
import type { HeartbeatSpec, HeartbeatType } from '../../src/heartbeat/kinds.js';
import { ConfigError } from '../../src/errors.js';
import { exampleIni, json, sandbox } from '../helpers/cli.js';

const base = `[server]\nmodes = active, standby\ndefault_mode = standby\n`;

/** The check `name` of `c`, of kind `type` (asserted). */
function beat<T extends HeartbeatType>(c: Config, name: string, type: T): Extract<HeartbeatSpec, { type: T }> {
  const spec = c.heartbeats.get(name);
  assert.equal(spec?.type, type);
  return spec as Extract<HeartbeatSpec, { type: T }>;
}

function configError(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseConfig(text, '/etc/bootstrap/bootstrap.ini'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.exitCode, 78);
      assert.match(err.describe(), pattern);
      return true;
    },
  );
}

describe('config: bootstrap.ini', () => {
  it('reads the example of the contract', () => {
    const c = parseConfig(readFileSync(exampleIni, 'utf8'), exampleIni);
    assert.deepEqual(c.server.modes, ['active', 'standby', 'maintenance']);
    assert.equal(c.server.defaultMode, 'standby');
    assert.equal(c.phases.scriptTimeoutMs, 1_800_000);
    assert.equal(c.phases.backout, 'failed');
    const haproxy = c.products.get('haproxy')!;
    assert.equal(haproxy.version, '2.6');
    assert.deepEqual(haproxy.settings.get('maxconn'), { product: 'haproxy', name: 'maxconn', type: { kind: 'int', min: 1, max: 100000 }, default: 4096 });
    assert.equal(haproxy.settings.get('stats_password')!.default, undefined);
    assert.deepEqual(c.products.get('deepfiler')!.settings.get('log_level')!.type, { kind: 'enum', values: ['debug', 'info', 'warn', 'error'] });
    assert.equal(beat(c, 'haproxy', 'haproxy').socket, '/run/haproxy/admin.sock');
    assert.deepEqual(beat(c, 'haproxy', 'haproxy').backends, ['app']);
    assert.equal(beat(c, 'deepfiler', 'http').expectStatus, 200);
  });

  it('resolves relative paths against the folder of the file', () => {
    const c = parseConfig(`${base}state_dir = ../state\n[log]\nfile = log/b.log\n[product.x.settings]\np = path:conf/x.conf\n`, '/etc/bootstrap/bootstrap.ini');
    assert.equal(c.server.stateDir, '/etc/state');
    assert.equal(c.log.file, '/etc/bootstrap/log/b.log');
    assert.equal(c.products.get('x')!.settings.get('p')!.default, '/etc/bootstrap/conf/x.conf');
  });

  it('reads true and false as text for boolean keys', () => {
    const c = parseConfig(`${base}[phases]\nhealth_gate = true\nallow_insecure = false\n`, '/x.ini');
    assert.equal(c.phases.healthGate, true);
    assert.equal(c.phases.allowInsecure, false);
  });

  it('refuses default_mode not among modes, naming section and key', () => configError(`[server]\nmodes = a, b\ndefault_mode = c\n`, /\[server\] default_mode: 'c' is not among modes \(a, b\)/));
  it('refuses an unknown setting type', () => configError(`${base}[product.x.settings]\ny = integer:3\n`, /\[product\.x\.settings\] y: 'integer:3' is not a setting type/));
  it('refuses a default of the wrong type', () => configError(`${base}[product.x.settings]\ny = port:70000\n`, /\[product\.x\.settings\] y: default '70000' is not a port number/));
  it('refuses a bad enum default', () => configError(`${base}[product.x.settings]\ny = enum(a|b):c\n`, /default 'c' is not one of a, b/));
  it('refuses an unknown section', () => configError(`${base}[sever]\nx=1\n`, /unknown section \[sever\].*did you mean server/));
  it('refuses an unknown key with a suggestion', () => configError(`${base}[phases]\nretires = 2\n`, /\[phases\] retires: unknown key.*did you mean retries/));
  it('refuses a bad backout policy', () => configError(`${base}[phases]\nbackout = some\n`, /\[phases\] backout: 'some' is not one of failed, all, none/));
  it('refuses a key with no value', () => configError(`${base}[phases]\nretries\n`, /\[phases\] retries: has no value/));
  it('refuses duplicate sections', () => configError(`${base}[phases]\nretries=1\n[phases]\nretries=2\n`, /section \[phases\] appears twice \(lines 4 and 6\)/));
  it('refuses duplicate keys', () => configError(`${base}[phases]\nretries=1\nretries=2\n`, /\[phases\] retries is set twice/));
  it('refuses __proto__ and constructor', () => {
    configError(`${base}[__proto__]\nx=1\n`, /'__proto__' is not allowed/);
    configError(`${base}[product.constructor]\nversion=1\n`, /'constructor' is not allowed/);
    configError(`${base}[phases]\n__proto__ = 1\n`, /'__proto__' is not allowed/);
  });
  it('explains an unquoted ; or # that cut a URL short', () => {
    configError(`${base}[callback]\nurl = https://example.com/hook#frag\n`, /\[callback\] url: the value was cut at '#'.*quote the whole value, url = "https:\/\/example.com\/hook#frag"/);
    configError(`${base}[heartbeat.h]\ntype = haproxy\nurl = http://127.0.0.1:8404/stats;csv\n`, /\[heartbeat\.h\] url: the value was cut at ';'/);
  });
  it('accepts the quoted form and comments after white space', () => {
    const c = parseConfig(`${base}[heartbeat.h]\ntype = haproxy\nurl = "http://127.0.0.1:8404/stats;csv"\n[callback]\nurl = https://example.com/x   ; a comment\n`, '/x.ini');
    assert.equal(beat(c, 'h', 'haproxy').url, 'http://127.0.0.1:8404/stats;csv');
    assert.equal(c.callback.url, 'https://example.com/x');
  });
  it('refuses an empty file and binary garbage', () => {
    configError('', /is empty/);
    configError('\n ; only a comment\n', /has no sections/);
    configError('\x00\x01\x02garbage', /not text/);
    configError('\x7fELF\x02\x01\x01 junk = \xff\n', /outside any section|unknown section/);
  });
  it('refuses heartbeat sections that cannot work', () => {
    configError(`${base}[heartbeat.h]\ntype = ping\n`, /\[heartbeat\.h\] type: 'ping' is not a heartbeat type/);
    configError(`${base}[heartbeat.h]\ntype = haproxy\n`, /set exactly one of socket and url/);
    configError(`${base}[heartbeat.h]\ntype = tcp\naddress = localhost\n`, /'localhost' is not host:port/);
    configError(`${base}[heartbeat.h]\ntype = exec\ncommand = "unterminated\n`, /unterminated/);
  });
});

describe('config: through the CLI', () => {
  const box = sandbox();
  after(() => box.cleanup());

  it('a missing config file exits 66', async () => {
    const r = await box.run(['product.get'], { env: { BOOTSTRAP_CONFIG: `${box.dir}/nope.ini` } });
    assert.equal(r.code, 66);
    assert.match(r.stderr, /^bootstrap: config file .*nope\.ini not found \(pass --config or set BOOTSTRAP_CONFIG; an example to start from: \S+bootstrap\.ini\)\n$/);
  });

  it('--config wins over BOOTSTRAP_CONFIG', async () => {
    const r = await box.run(['product.get', '--json', '--config', box.config], { env: { BOOTSTRAP_CONFIG: '/nonexistent.ini' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(json(r).products.length === 2);
  });

  it('a malformed config exits 78 with --json error object', async () => {
    const bad = sandbox(`[server]\nmodes = a\ndefault_mode = b\n`);
    try {
      const r = await bad.run(['server.status', '--json']);
      assert.equal(r.code, 78);
      assert.deepEqual(json(r), { schema_version: 1, error: { code: 78, message: "[server] default_mode: 'b' is not among modes (a) (add it to modes or pick one of them)" } });
    } finally {
      bad.cleanup();
    }
  });

  it('a 10 MB config is refused, not parsed', async () => {
    const big = sandbox(`${base}; ${'x'.repeat(10 * 1024 * 1024)}\n`);
    try {
      const r = await big.run(['product.get']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /more than the 1 MiB/);
    } finally {
      big.cleanup();
    }
  });
});
