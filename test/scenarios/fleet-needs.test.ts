// What rolling the agent over a fleet needs of each agent: a label on every run, the version in
// force apart from the target, paths given relative to where the command was run.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bin, json, root } from '../helpers/cli.js';
import { iniWith, recordingStep, script, withBox } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';

describe('what a fleet rollout needs of the agent', () => {
  it('--label on every run command: in the journal, the callback, BOOTSTRAP_LABEL and the --json output; a bad one is 64', async () => {
    const bodies: any[] = [];
    const stub = await httpStub((req, res) => {
      let b = '';
      req.setEncoding('utf8').on('data', (d: string) => (b += d));
      req.on('end', () => {
        bodies.push(JSON.parse(b));
        res.end();
      });
    });
    try {
      await withBox(iniWith({}, `\n[callback]\nurl = ${stub.url}/cb\ntimeout = 3\n`), async (box, log) => {
        script(join(box.phasesDir, 'configure.d', '10-label'), 'echo "$BOOTSTRAP_LABEL" >> "$LOG"');
        const runs = [
          ['server.provision', '--label', 'rollout-1/canary'],
          ['server.refresh', '--label', 'rollout-1/batch-1'],
          ['server.mode', 'active', '--label', 'rollout-1/batch-2'],
          ['product.upgrade', 'haproxy', '--to', '2.8', '--label', 'rollout-1/backout'],
        ];
        for (const args of runs) {
          const r = await box.run([...args, '--json'], { env: { LOG: log } });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(json(r).label, args.at(-1));
          assert.equal(json(await box.run(['runs.show', json(r).id, '--json'])).label, args.at(-1));
        }
        assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), runs.map((a) => a.at(-1)));
        assert.deepEqual(bodies.map((b) => b.label), runs.map((a) => a.at(-1)));
        const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
        for (const b of bodies) for (const key of Object.keys(b)) assert.ok(Object.hasOwn(schema.properties, key), key);
        assert.equal((await box.run(['server.refresh', '--label', 'two\nlines'])).code, 64);
      })();
    } finally {
      await stub.close();
    }
  });

  it('a failed upgrade reports the version in force (the old one) and the target apart, as state.json keeps them', withBox(iniWith(), async (box) => {
    recordingStep(box.phasesDir, 'configure', '10-a', '[ "$BOOTSTRAP_ACTION" = upgrade ] && exit 3; true');
    assert.equal((await box.run(['server.provision'])).code, 0);
    const r = await box.run(['product.upgrade', 'haproxy', '--to', '2.8', '--json'], { env: { LOG: join(box.dir, 'log') } });
    assert.equal(r.code, 1);
    assert.equal(json(r).products.haproxy, '2.6', 'the version in force');
    assert.deepEqual(json(r).upgrade, { product: 'haproxy', from: '2.6', to: '2.8' });
    const state = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
    assert.equal(state.products.haproxy.version, '2.6');
  }));

  it('relative --config, --state-dir and --phases-dir are resolved once, against the working directory', withBox(iniWith(), async (box) => {
    mkdirSync(join(box.phasesDir, 'environment.d'), { recursive: true });
    writeFileSync(join(box.phasesDir, 'environment.d', '10-env'), 'export SEEN_STATE="$BOOTSTRAP_STATE_DIR"\n');
    script(join(box.phasesDir, 'configure.d', '10-a'), 'echo "$SEEN_STATE $BOOTSTRAP_CONFIG_JSON" > "$LOG"');
    const log = join(box.dir, 'log');
    const r = spawnSync(process.execPath, [bin, 'server.provision', '--config', 'bootstrap.ini', '--phases-dir', 'phases', '--state-dir', 'st'], { cwd: box.dir, env: { PATH: process.env['PATH'], LOG: log }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [stateDir, snapshot] = readFileSync(log, 'utf8').trim().split(' ');
    assert.equal(stateDir, join(box.dir, 'st'));
    assert.ok(snapshot!.startsWith(join(box.dir, 'st', 'runs')));
  }));
});
