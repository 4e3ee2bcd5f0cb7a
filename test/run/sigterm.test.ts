import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, json } from '../helpers/cli.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';

describe('SIGTERM during a run', () => {
  it(
    'error.d runs to its end and is recorded, though steps were queued behind the stopped step (five times: it was a race)',
    withBox(iniWith({ kill_grace: 2 }), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-long'), 'echo $$ > "$LOG.pid"; sleep 60');
      script(join(box.phasesDir, 'configure.d', '20-next'), 'echo next >> "$LOG"');
      script(join(box.phasesDir, 'configure.d', '30-last'), 'echo last >> "$LOG"');
      // Long enough to outlive the step's stop: a sweep by the run's marker started meanwhile would end it.
      script(join(box.phasesDir, 'error.d', '10-e'), 'echo "start $BOOTSTRAP_FAILURE" >> "$LOG"; sleep 2.5; echo end >> "$LOG"');
      for (let round = 0; round < 5; round++) {
        const child = box.start(['server.provision'], { env: { LOG: log } });
        const done = collect(child);
        for (let i = 0; i < 200 && !existsSync(`${log}.pid`); i++) await new Promise((r) => setTimeout(r, 25));
        assert.ok(existsSync(`${log}.pid`), 'the step started');
        child.kill('SIGTERM');
        const r = await done;
        assert.equal(r.code, 1, r.stderr);
        assert.deepEqual(readLines(log), ['start signal', 'end'], `round ${round}: ${r.stderr}`);
        const j = json(await box.run(['runs.show', 'last', '--json']));
        assert.equal(j.failure.kind, 'signal');
        assert.deepEqual(j.error_steps.map((s: { name: string; status: string }) => [s.name, s.status]), [['10-e', 'success']], `round ${round}`);
        rmSync(log);
        rmSync(`${log}.pid`);
      }
    }),
  );
});
