// Secrets in what steps and explorers write, and what their text does to a terminal. Text
// enters the agent in a few places (step output, explorer facts, the changes and reboot files):
// secrets are masked there, after decoding (JSON escapes) and before any cut (log pieces, the
// journal's tail, bounded reads); control characters are shown escaped wherever text is printed.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json, type CliResult } from '../helpers/cli.js';
import { filesUnder, iniWith, journals, script, withBox } from '../helpers/phases.js';
import { jsonReceiver } from '../helpers/servers.js';

/** Non-ASCII, so that JSON encoders (Python's json.dumps) spell it with escapes. */
const secret = 'Pä55wörd-Zq9';
const escaped = 'P\\u00e455w\\u00f6rd-Zq9';
const piece = 16 * 1024; // src/pipeline/output.ts maxLineChars: a longer line is logged in pieces

const printed = (...runs: CliResult[]) => runs.map((r) => r.stdout + r.stderr).join('\n');
const journalOf = (stateDir: string, id: string) => readFileSync(join(stateDir, 'runs', `${id}.json`), 'utf8');

/** An ini with a callback receiver and a JSON log file. */
function iniFor(url: string, logFile: string, phases: Record<string, string> = {}): string {
  return iniWith(phases, `\n[callback]\nurl = ${url}/cb\ntimeout = 5\n\n[log]\nfile = ${logFile}\nlevel = debug\n`);
}

describe('secrets in what steps and explorers write', () => {
  it(
    'an explorer printing the settings with json.dumps (\\u00e4 escapes): the secret is masked in facts.json, server.facts, the journal and the callback; a step doing so is masked in the log',
    withBox(iniWith(), async (box) => {
      const receiver = await jsonReceiver();
      const logFile = join(box.dir, 'bootstrap.log');
      try {
        writeFileSync(box.config, iniFor(receiver.url, logFile));
        const dump = `#!/usr/bin/python3\nimport json, os\nconfig = json.load(open(os.environ['BOOTSTRAP_CONFIG_JSON']))\nprint(json.dumps(config['products']['haproxy']['settings']))\n`;
        script(join(box.phasesDir, 'explorer.d', '10-haproxy'), dump);
        script(join(box.phasesDir, 'configure.d', '10-dump'), dump);
        assert.equal((await box.run(['product.set', `haproxy.stats_password=${secret}`])).code, 0);
        const run = await box.run(['server.provision', '--json', '-v']);
        assert.equal(run.code, 0, run.stderr);
        const id = json(run).id;
        const facts = await box.run(['server.facts']);
        const factsJson = await box.run(['server.facts', '--json']);
        // The fact is kept as JSON, the secret masked in it.
        assert.deepEqual(json(factsJson).facts.haproxy, { maxconn: 4096, bind_port: 80, stats_password: '********' });
        const fact = JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8')).facts.haproxy;
        assert.equal(fact.stats_password, '********');
        assert.equal(JSON.parse(journalOf(box.stateDir, id)).facts.haproxy.stats_password, '********');
        assert.equal(receiver.bodies.length, 1);
        assert.match(run.stderr, /configure\/10-dump \| \{.*"stats_password": "\*{8}"\}/, 'a step printing it as JSON is masked too');
        const places: [string, string][] = [
          ['printed', printed(run, facts, factsJson)],
          ['log file', readFileSync(logFile, 'utf8')],
          ['callback', JSON.stringify(receiver.bodies)],
          ...filesUnder(box.stateDir).filter(([f]) => !f.endsWith('/state.json')).map(([f, t]): [string, string] => [f, Buffer.from(t, 'latin1').toString('utf8')]),
        ];
        for (const [where, text] of places) {
          assert.ok(!text.includes(secret), `the secret in clear in ${where}`);
          assert.ok(!text.includes(escaped), `the secret JSON-escaped in ${where}`);
        }
      } finally {
        await receiver.close();
      }
    }),
  );

  it(
    'a secret that straddles a cut is never stored or logged in two halves: the 16 KiB log piece, the 64 KiB journal tail, the 4 KiB reboot file',
    withBox(iniWith(), async (box) => {
      const logFile = join(box.dir, 'bootstrap.log');
      writeFileSync(box.config, iniWith({ reboot_command: '/bin/true' }, `\n[log]\nfile = ${logFile}\n`));
      const long = 'Zq9SecretValue-42';
      // One line: 16,380 x, the secret, 100,000 x. Then the secret on a line of its own, 5
      // characters of it before the journal's last 64 KiB.
      script(
        join(box.phasesDir, 'configure.d', '10-long'),
        `#!/usr/bin/python3
import sys
sys.stdout.write('x' * ${piece - 4} + '${long}' + 'x' * 100000 + '\\n')
sys.stdout.write('${long}\\n' + ('y' * 99 + '\\n') * 655 + 'z' * 29 + '\\n')
`,
      );
      // The reboot reason is the first non-blank line of the file's first 4 KiB: here the secret, cut at 4 KiB.
      script(join(box.phasesDir, 'configure.d', '20-ask'), `printf '%4090s' '' | tr ' ' '\\n' > "$BOOTSTRAP_REBOOT_FILE"; printf '${long}\\n' >> "$BOOTSTRAP_REBOOT_FILE"`);
      assert.equal((await box.run(['product.set', `haproxy.stats_password=${long}`])).code, 0);
      const run = await box.run(['server.provision', '--json']);
      assert.equal(run.code, 0, run.stderr);
      // Every cut, checked before any assertion, so that a failure names all the cuts that leak.
      const leaks: string[] = [];
      // The pieces of the long line, put back together, hold no secret.
      const pieces = run.stderr.split('\n').filter((l) => l.includes('configure/10-long | ') && l.length > 1000).map((l) => l.slice(l.indexOf(' | ') + 3));
      if (pieces.join('').includes(long)) leaks.push('log pieces: the secret in two halves');
      const entries = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { source?: string; message: string });
      const fileLog = entries.filter((e) => e.source === 'configure/10-long' && e.message.length > 1000).map((e) => e.message).join('');
      if (fileLog.includes(long)) leaks.push('log file pieces: the secret in two halves');
      const j = JSON.parse(journalOf(box.stateDir, json(run).id));
      const step = j.phases.find((p: any) => p.phase === 'configure').steps[0];
      const tail: string = step.output_tail;
      for (let n = 3; n < long.length; n++) if (tail.startsWith(long.slice(-n))) leaks.push(`journal tail: starts with the end of the secret, ${tail.slice(0, 20)}`);
      if (j.reboots[0].reason !== '********') leaks.push(`reboot reason: ${j.reboots[0].reason}`);
      for (const [where, text] of [['printed', printed(run)], ...filesUnder(box.stateDir).filter(([f]) => !f.endsWith('/state.json') && !f.endsWith('.config.json'))]) {
        if (text!.includes(long.slice(0, 6))) leaks.push(`the start of the secret in ${where}`);
      }
      assert.deepEqual(leaks, []);
      assert.ok(pieces.join('').includes('********'));
      assert.equal(step.output_truncated, true);
      assert.ok(pieces.length >= 7 && pieces.every((p) => p.length <= piece + long.length), `the long line in pieces of 16 KiB: ${pieces.map((p) => p.length)}`);
    }),
  );

  it(
    'a reboot reason holding a secret is masked in the run output, the journal, the rebooting callback, state.json, server.status and the 75 errors while it waits',
    withBox(iniWith(), async (box) => {
      const receiver = await jsonReceiver();
      const logFile = join(box.dir, 'bootstrap.log');
      try {
        writeFileSync(box.config, iniFor(receiver.url, logFile, { reboot_command: '/bin/true' }));
        script(join(box.phasesDir, 'configure.d', '10-rotate'), `#!/usr/bin/python3\nimport json, os\nc = json.load(open(os.environ['BOOTSTRAP_CONFIG_JSON']))\nopen(os.environ['BOOTSTRAP_REBOOT_FILE'], 'w').write('rotated key ' + c['products']['haproxy']['settings']['stats_password'] + '\\n')\n`);
        assert.equal((await box.run(['product.set', `haproxy.stats_password=${secret}`])).code, 0);
        const run = await box.run(['server.provision']);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /asked for a reboot \(rotated key \*{8}\)/);
        const id = journals(box.stateDir)[0]!.replace(/\.json$/, '');
        const waiting = [await box.run(['server.refresh', '--label', 'x']), await box.run(['server.provision']), await box.run(['server.mode', 'active', '--json'])];
        const status = [await box.run(['server.status']), await box.run(['server.status', '--json']), await box.run(['runs.show', id])];
        for (const w of waiting) assert.equal(w.code, 75, w.stdout + w.stderr);
        assert.match(waiting[1]!.stderr, /waits for the reboot configure\/10-rotate asked for .*\(rotated key \*{8}\)/);
        assert.match(json(waiting[2]!).error.message, /rotated key \*{8}/);
        assert.match(status[0]!.stdout, /rotated key \*{8}/);
        assert.equal(json(status[1]!).paused_run.reason, 'rotated key ********');
        const state = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
        assert.equal(state.paused_run.reason, 'rotated key ********');
        assert.equal(receiver.bodies.length, 1);
        assert.equal(receiver.bodies[0]!.body.status, 'rebooting');
        const places: [string, string][] = [
          ['printed', printed(run, ...waiting, ...status)],
          ['log file', readFileSync(logFile, 'utf8')],
          ['callback', JSON.stringify(receiver.bodies)],
          ['state.json paused_run', JSON.stringify(state.paused_run)],
          ['journal', journalOf(box.stateDir, id)],
        ];
        for (const [where, text] of places) assert.ok(!text.includes(secret) && !text.includes(escaped), `the secret in ${where}`);
      } finally {
        await receiver.close();
      }
    }),
  );

  it(
    'an exec heartbeat that prints a secret: masked in heartbeat.get, heartbeat.checkup, last_checkup in state.json and server.status',
    withBox(iniWith(), async (box) => {
      writeFileSync(box.config, iniWith({}, `\n[heartbeat.vault]\ntype = exec\ncommand = /bin/sh -c 'echo unsealed with ${secret} && exit 1'\ntimeout = 5\n`));
      assert.equal((await box.run(['product.set', `haproxy.stats_password=${secret}`])).code, 0);
      const get = await box.run(['heartbeat.get']);
      const checkup = await box.run(['heartbeat.checkup', '--json']);
      const status = await box.run(['server.status', '--json']);
      assert.equal(checkup.code, 1, checkup.stderr);
      assert.equal(json(checkup).results[0].detail, 'exit 1: unsealed with ********');
      const state = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
      assert.equal(state.last_checkup.results[0].detail, 'exit 1: unsealed with ********');
      assert.match(get.stdout, /unsealed with \*{8}/);
      assert.ok(!printed(get, checkup, status).includes(secret), 'the secret in what was printed');
    }),
  );

  it(
    'a step printing the secret shell-quoted (set -x, printf %q), as Go, PHP and Python write it in JSON and URLs, or in base64: masked in the log and the journal',
    withBox(iniWith(), async (box) => {
      const logFile = join(box.dir, 'bootstrap.log');
      writeFileSync(box.config, iniWith({}, `\n[log]\nfile = ${logFile}\nlevel = debug\n`));
      const pw = "It's a S3cr3t/<&>x;$|*";
      // Each line: a tag, then the secret as one encoder writes it.
      script(
        join(box.phasesDir, 'configure.d', '10-forms'),
        `#!/usr/bin/python3
import base64, json, os, re, subprocess, urllib.parse as u
pw = json.load(open(os.environ['BOOTSTRAP_CONFIG_JSON']))['products']['haproxy']['settings']['stats_password']
j = json.dumps(pw)[1:-1]
go = j.replace('<', '\\\\u003c').replace('>', '\\\\u003e').replace('&', '\\\\u0026')
b = pw.encode()
for tag, form in [('go', go), ('php', j.replace('/', '\\\\/')), ('quote', u.quote(pw)), ('quote_lower', re.sub('%..', lambda m: m.group().lower(), u.quote(pw))), ('quote_plus', u.quote_plus(pw)),
                  ('b64', base64.b64encode(b).decode()), ('b64url', base64.urlsafe_b64encode(b).decode().rstrip('='))]:
    print(tag + ' ' + form, flush=True)
subprocess.run(['bash', '-c', 'printf "printf_q %q\\\\n" "$1"; set -x; pw=$1', '_', pw], stderr=subprocess.STDOUT)
`,
      );
      assert.equal((await box.run(['product.set', `haproxy.stats_password=${pw}`])).code, 0);
      const run = await box.run(['server.provision', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const out = run.stderr.split('\n').filter((l) => l.includes('configure/10-forms | ')).map((l) => l.slice(l.indexOf(' | ') + 3));
      assert.equal(out.length, 9, run.stderr);
      const b64 = Buffer.from(pw).toString('base64');
      // Every form checked before asserting, so that a failure names all the forms that leak.
      assert.deepEqual(out.filter((line) => !/^(\w+ |\+ pw=')\*{8}'?$/.test(line)), [], 'the secret, encoded, in the log');
      for (const text of [run.stderr, readFileSync(logFile, 'utf8'), journalOf(box.stateDir, json(run).id)]) {
        assert.ok(!text.includes('S3cr3t') && !text.includes(b64.slice(0, 12)), 'the secret, encoded, in the log or journal');
      }
    }),
  );

  it(
    'a numeric secret in an explorer\'s JSON fact (a number there, not a string): masked in facts.json, server.facts, the journal and the callback',
    withBox(iniWith(), async (box) => {
      const receiver = await jsonReceiver();
      const logFile = join(box.dir, 'bootstrap.log');
      try {
        writeFileSync(box.config, iniFor(receiver.url, logFile));
        script(join(box.phasesDir, 'explorer.d', '10-pin'), `#!/bin/sh\necho '{"pin": 734918265, "port": 80, "on": true}'\n`);
        assert.equal((await box.run(['product.set', 'haproxy.stats_password=734918265'])).code, 0);
        const run = await box.run(['server.provision', '--json']);
        assert.equal(run.code, 0, run.stderr);
        const factsJson = await box.run(['server.facts', '--json']);
        assert.deepEqual(json(factsJson).facts.pin, { pin: '********', port: 80, on: true });
        assert.equal(JSON.parse(readFileSync(join(box.stateDir, 'facts.json'), 'utf8')).facts.pin.pin, '********');
        assert.equal(receiver.bodies.length, 1);
        const places: [string, string][] = [
          ['printed', printed(run, factsJson, await box.run(['server.facts']))],
          ['log file', readFileSync(logFile, 'utf8')],
          ['callback', JSON.stringify(receiver.bodies)],
          ['journal', journalOf(box.stateDir, json(run).id)],
        ];
        for (const [where, text] of places) assert.ok(!text.includes('734918265'), `the secret in clear in ${where}`);
      } finally {
        await receiver.close();
      }
    }),
  );

  it(
    'product.set --apply rotating a secret: a step printing the old value has it masked too, in the log, the journal and the callback',
    withBox(iniWith(), async (box) => {
      const receiver = await jsonReceiver();
      const logFile = join(box.dir, 'bootstrap.log');
      try {
        writeFileSync(box.config, iniFor(receiver.url, logFile));
        const cfg = join(box.dir, 'haproxy.cfg');
        // The render step shows the line it replaces, then writes the new one.
        script(
          join(box.phasesDir, 'configure.d', '10-render'),
          `#!/usr/bin/python3\nimport json, os\npw = json.load(open(os.environ['BOOTSTRAP_CONFIG_JSON']))['products']['haproxy']['settings']['stats_password']\nif os.path.exists('${cfg}'): print('was: ' + open('${cfg}').read().strip())\nopen('${cfg}', 'w').write('stats auth admin:' + pw + '\\n')\n`,
        );
        assert.equal((await box.run(['product.set', 'haproxy.stats_password=FirstPassw0rd!'])).code, 0);
        assert.equal((await box.run(['server.provision'])).code, 0);
        const apply = await box.run(['product.set', 'haproxy.stats_password=SecondPassw0rd!', '--apply', '--json']);
        assert.equal(apply.code, 0, apply.stderr);
        assert.match(apply.stderr, /configure\/10-render \| was: stats auth admin:\*{8}/);
        assert.equal(receiver.bodies.length, 2);
        const places: [string, string][] = [
          ['printed', printed(apply)],
          ['log file', readFileSync(logFile, 'utf8')],
          ['callback', JSON.stringify(receiver.bodies)],
          ['journal', journalOf(box.stateDir, json(apply).id)],
        ];
        for (const [where, text] of places) assert.ok(!text.includes('FirstPassw0rd!') && !text.includes('SecondPassw0rd!'), `a secret in clear in ${where}`);
      } finally {
        await receiver.close();
      }
    }),
  );
});

describe('what steps write reaches the terminal escaped', () => {
  it(
    'a reboot reason and a change line holding escape sequences: shown escaped in the run output, server.status and runs.show; --json escapes DEL and C1 too and keeps the data',
    withBox(iniWith({ reboot_command: '/bin/true' }), async (box) => {
      const evil = '\x1b]0;PWNED\x07\x1b[2J';
      const shown = '\\x1b]0;PWNED\\x07\\x1b[2J';
      script(join(box.phasesDir, 'configure.d', '10-evil'), `printf 'rewrote \\033]0;PWNED\\007\\033[2J \\177 \\302\\233 ok\\n' >> "$BOOTSTRAP_CHANGES"; printf 'out \\033]0;PWNED\\007\\033[2J\\n'; printf 'kernel \\033]0;PWNED\\007\\033[2J\\n' > "$BOOTSTRAP_REBOOT_FILE"`);
      const run = await box.run(['server.provision']);
      assert.equal(run.code, 0, run.stderr);
      const id = journals(box.stateDir)[0]!.replace(/\.json$/, '');
      const status = await box.run(['server.status']);
      const show = await box.run(['runs.show', id]);
      const waiting = await box.run(['server.refresh']);
      assert.equal(waiting.code, 75);
      for (const [where, r] of [['run', run], ['server.status', status], ['runs.show', show], ['75 error', waiting]] as const) {
        const text = r.stdout + r.stderr;
        assert.ok(!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text), `a raw control character in the output of ${where}: ${JSON.stringify(text)}`);
        assert.ok(text.includes(`kernel ${shown}`), `${where} shows the reason escaped: ${text}`);
      }
      assert.ok(run.stdout.includes(`rewrote ${shown} \\x7f \\x9b ok`), run.stdout);
      assert.ok(show.stdout.includes(`+ rewrote ${shown} \\x7f \\x9b ok`), show.stdout);
      assert.ok(show.stdout.includes(`| out ${shown}`), show.stdout);
      assert.ok(run.stderr.includes(`configure/10-evil | out ${shown}`), 'the step output in the log, escaped');
      // --json: valid JSON with the text as written; no raw DEL or C1 on the terminal either.
      const showJson = await box.run(['runs.show', id, '--json']);
      assert.ok(!/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(showJson.stdout), 'a raw control character in --json output');
      const j = json(showJson);
      assert.equal(j.reboots[0].reason, `kernel ${evil}`);
      assert.equal(j.phases.find((p: any) => p.phase === 'configure').steps[0].changes[0], `rewrote ${evil} \x7f \x9b ok`);
    }),
  );
});
