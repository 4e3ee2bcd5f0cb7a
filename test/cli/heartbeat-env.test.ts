// An exec check runs with the agent's environment: the CLI's, as heartbeat.get, heartbeat.checkup
// and a run's health gate see it, and the `env` an Agent was given (not the process's own).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../src/agent.js';
import { json, sandbox } from '../helpers/cli.js';
import { iniWith } from '../helpers/phases.js';

const name = 'BOOTSTRAP_TEST_HB_ONLY_HERE';
const ini = (phases: Record<string, string | number> = {}) => iniWith(phases, `[heartbeat.env]\ntype = exec\ncommand = printenv ${name}\n`);

describe('heartbeat: an exec check gets the agent environment', () => {
  it('heartbeat.get and heartbeat.checkup: a variable set only in the CLI environment', async () => {
    assert.equal(process.env[name], undefined);
    const box = sandbox(ini());
    try {
      for (const command of ['heartbeat.get', 'heartbeat.checkup']) {
        const r = await box.run([command, '--json'], { env: { [name]: `seen by ${command}` } });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(json(r).results.map((x: any) => [x.name, x.type, x.healthy, x.detail]), [['env', 'exec', true, `seen by ${command}`]]);
      }
      const unset = await box.run(['heartbeat.get', '--json']);
      assert.equal(unset.code, 1);
      assert.deepEqual(json(unset).results.map((x: any) => [x.healthy, x.detail]), [[false, 'exit 1']]);
    } finally {
      box.cleanup();
    }
  });

  it("a run's health gate: the check sees the run's environment", async () => {
    const box = sandbox(ini({ health_gate: 'true', health_timeout: 5 }));
    try {
      mkdirSync(join(box.phasesDir, 'configure.d'), { recursive: true });
      const r = await box.run(['server.mode', 'active', '--json'], { env: { [name]: 'seen by the gate' } });
      assert.equal(r.code, 0, r.stderr);
      const journal = json(await box.run(['runs.show', '--json']));
      assert.deepEqual(journal.health.results.map((x: any) => [x.healthy, x.detail]), [[true, 'seen by the gate']]);
    } finally {
      box.cleanup();
    }
  });

  it("an Agent's checks run with the env it was given, not the process's", async () => {
    const box = sandbox(ini());
    try {
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: { PATH: process.env['PATH'], [name]: 'given to the Agent' } });
      const checkup = await agent.heartbeatGet();
      assert.deepEqual(checkup.results.map((x) => [x.healthy, x.detail]), [[true, 'given to the Agent']]);
    } finally {
      box.cleanup();
    }
  });
});
