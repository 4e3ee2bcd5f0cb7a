// The last success and the failed runs since: state.json, server.status (human and --json), the
// journal (runs.show --json), the run's --json output and its callback. Real runs of real
// scripts in temp dirs, through the CLI; the callbacks to a real receiver on 127.0.0.1.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json, root, sandbox, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, script } from '../helpers/phases.js';
import { jsonReceiver } from '../helpers/servers.js';

const state = (box: Sandbox) => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));

describe('last success', () => {
  it('a success, then two failures: 2 failed runs since, the success kept; a success resets; everywhere it is said', async () => {
    const receiver = await jsonReceiver();
    const box = sandbox(iniWith({}, `\n[callback]\nurl = ${receiver.url}/hook\n`));
    const broken = join(box.dir, 'broken');
    script(join(box.phasesDir, 'configure.d', '10-step'), `[ -e "${broken}" ] && exit 3; exit 0`);
    try {
      const ok = await box.run(['server.provision', '--json']);
      assert.equal(ok.code, 0, ok.stderr);
      const success = json(ok);
      const mark = { id: success.id, action: 'provision', finished_at: success.finished_at };
      assert.deepEqual(success.last_success, mark, 'a success is its own last success');
      assert.equal(success.failed_runs_since_success, 0);
      assert.deepEqual(state(box).last_success, mark);
      assert.equal(state(box).failed_runs_since_success, 0);

      writeFileSync(broken, '');
      const failures = [];
      for (let i = 1; i <= 2; i++) {
        const r = await box.run(['server.refresh', '--json']);
        assert.equal(r.code, 1, r.stderr);
        failures.push(json(r));
        assert.deepEqual(json(r).last_success, mark, `failure ${i} keeps the success`);
        assert.equal(json(r).failed_runs_since_success, i);
      }
      assert.deepEqual(state(box).last_success, mark);
      assert.equal(state(box).failed_runs_since_success, 2);
      assert.equal(state(box).last_run.status, 'failure');

      const status = json(await box.run(['server.status', '--json']));
      assert.deepEqual(status.last_success, mark);
      assert.equal(status.failed_runs_since_success, 2);
      assert.equal(status.last_run.id, failures[1].id);
      const human = (await box.run(['server.status'])).stdout;
      assert.match(human, new RegExp(`^last success: +provision .* ago \\(${mark.finished_at}\\) \\(run ${mark.id}\\); 2 failed runs since$`, 'm'));
      assert.match(human, /^last run: +refresh failure .* ago /m);

      const journal = json(await box.run(['runs.show', failures[1].id, '--json']));
      assert.deepEqual(journal.last_success, mark);
      assert.equal(journal.failed_runs_since_success, 2);
      assert.match((await box.run(['runs.show', failures[1].id])).stdout, /^last success: provision at \S+ \(run \S+\); 2 failed runs since \(this one included\)$/m);
      assert.match((await box.run(['server.refresh'])).stdout, /^last success: provision at \S+ \(run \S+\); 3 failed runs since \(this one included\)$/m, 'a failed run says so');

      // The callbacks say what state.json says, and fit the published schema.
      const bodies = receiver.bodies.map((b) => b.body);
      assert.equal(bodies.length, 4);
      for (const body of bodies) assert.deepEqual(validate(schema, body), []);
      assert.deepEqual(bodies.map((b) => b.failed_runs_since_success), [0, 1, 2, 3]);
      for (const body of bodies) assert.deepEqual(body.last_success, mark);

      rmSync(broken);
      const again = json(await box.run(['server.refresh', '--json']));
      assert.equal(again.status, 'success');
      assert.deepEqual(state(box).last_success, { id: again.id, action: 'refresh', finished_at: again.finished_at });
      assert.equal(state(box).failed_runs_since_success, 0);
      assert.equal(json(await box.run(['server.status', '--json'])).failed_runs_since_success, 0);
      assert.doesNotMatch((await box.run(['server.status'])).stdout, /failed runs? since/);
    } finally {
      box.cleanup();
      await receiver.close();
    }
  });

  it('a state.json of an older agent (no counter): the last success is its last run, if that succeeded; a failed one counts as one', async () => {
    const box = sandbox(iniWith());
    script(join(box.phasesDir, 'configure.d', '10-step'), 'exit 0');
    try {
      assert.equal((await box.run(['server.provision'])).code, 0);
      const doc = state(box);
      const { last_success: mark, failed_runs_since_success: _, ...older } = doc;
      writeFileSync(join(box.stateDir, 'state.json'), JSON.stringify(older));
      assert.deepEqual(json(await box.run(['server.status', '--json'])).last_success, mark);
      writeFileSync(join(box.stateDir, 'state.json'), JSON.stringify({ ...older, last_run: { ...older.last_run, status: 'failure', exit_code: 1 } }));
      const status = json(await box.run(['server.status', '--json']));
      assert.equal(status.last_success, null);
      assert.equal(status.failed_runs_since_success, 1);
    } finally {
      box.cleanup();
    }
  });

  it('a checkup callback carries the last success and the failed runs since', async () => {
    const receiver = await jsonReceiver();
    const box = sandbox(iniWith({}, `\n[heartbeat.ok]\ntype = exec\ncommand = true\n\n[callback]\nurl = ${receiver.url}/hook\n`));
    script(join(box.phasesDir, 'configure.d', '10-step'), 'exit 0');
    try {
      const run = json(await box.run(['server.provision', '--json']));
      assert.equal((await box.run(['heartbeat.checkup', '--report'])).code, 0);
      const body = receiver.bodies.at(-1)!.body;
      assert.equal(body.kind, 'checkup');
      assert.deepEqual(body.last_success, { id: run.id, action: 'provision', finished_at: run.finished_at });
      assert.equal(body.failed_runs_since_success, 0);
      assert.deepEqual(validate(schema, body), []);
    } finally {
      box.cleanup();
      await receiver.close();
    }
  });
});
