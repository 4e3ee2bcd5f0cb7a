// The step runner's `apply` switch, through the preview that asks it (pipeline/preview.ts): with
// apply false nothing a step does runs; NAME.if always answers, NAME.check only when asked (a
// verify of "is the server still as configured?" is this with check: true).

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/log.js';
import { planPhases } from '../../src/pipeline/plan.js';
import { previewSteps } from '../../src/pipeline/preview.js';

function tree(): { dir: string; ran: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bootstrap-steps-'));
  const ran = join(dir, 'ran.log');
  const file = (name: string, body: string) => {
    mkdirSync(join(dir, 'configure.d'), { recursive: true });
    writeFileSync(join(dir, 'configure.d', name), `#!/bin/sh\necho ${name} >> "${ran}"\n${body}\n`);
    chmodSync(join(dir, 'configure.d', name), 0o755);
  };
  file('10-plain', 'exit 0');
  file('20-conf', 'exit 0');
  file('20-conf.check', 'exit 0');
  file('30-drift', 'exit 0');
  file('30-drift.check', 'echo "maxconn is 100, not 4096"; exit 1');
  file('40-off', 'exit 0');
  file('40-off.if', 'echo "not this mode"; exit 1');
  file('40-off.check', 'exit 0');
  return { dir, ran };
}

async function ask(dir: string, check: boolean) {
  const plan = planPhases(dir);
  const phases = parseConfig("[phases]\norc_lockfile = ''\n", join(dir, 'bootstrap.ini')).phases;
  return previewSteps({ plan, environment: async () => ({ PATH: process.env['PATH'] }), marker: `BOOTSTRAP_TEST_STEPS=${process.pid}`, phases, log: silentLogger(), check });
}

describe('the step runner with apply false', () => {
  it('runs no step; its .if always, its .check only when asked, and a failed check is that step\'s verdict', async () => {
    const { dir, ran } = tree();
    try {
      const preview = await ask(dir, false);
      assert.deepEqual(preview.map((p) => [p.step, p.verdict]), [['10-plain', 'run'], ['20-conf', 'run'], ['30-drift', 'run'], ['40-off', 'skip']]);
      assert.deepEqual(readFileSync(ran, 'utf8').trim().split('\n'), ['40-off.if']);
      rmSync(ran);
      const verified = await ask(dir, true);
      assert.deepEqual(verified.map((p) => [p.step, p.verdict]), [['10-plain', 'run'], ['20-conf', 'run'], ['30-drift', 'fail'], ['40-off', 'skip']]);
      assert.match(verified[2]!.reason ?? '', /exit 1/);
      // Checks and conditions ran; no step did, and a skipped step's check did not either.
      assert.deepEqual(readFileSync(ran, 'utf8').trim().split('\n'), ['20-conf.check', '30-drift.check', '40-off.if']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
