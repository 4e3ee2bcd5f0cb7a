import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, json } from '../helpers/cli.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';
import { isProcessAlive } from '../../src/util/process.js';

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
        for (let i = 0; i < 2400 && !existsSync(`${log}.pid`); i++) await new Promise((r) => setTimeout(r, 25));
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

  it(
    'stops the step and runs error.d when the output relay has not relayed its first line yet (a `cat` that waits 0.5 s: the hang of a loaded machine, every time)',
    withBox(iniWith({ kill_grace: 2 }), async (box, log) => {
      // The relay is `exec cat`: one first on PATH that waits keeps the agent from knowing it.
      const bin = join(box.dir, 'slow-bin');
      mkdirSync(bin);
      const realCat = execFileSync('sh', ['-c', 'command -v cat'], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, 'cat'), `#!/bin/sh\nsleep 0.5\nexec ${realCat} "$@"\n`);
      chmodSync(join(bin, 'cat'), 0o755);
      script(join(box.phasesDir, 'configure.d', '10-long'), 'echo $$ > "$LOG.pid"; sleep 60');
      script(join(box.phasesDir, 'configure.d', '20-next'), 'echo next >> "$LOG"');
      script(join(box.phasesDir, 'error.d', '10-e'), 'echo "error.d $BOOTSTRAP_FAILURE" >> "$LOG"');
      const child = box.start(['server.provision'], { env: { LOG: log, PATH: `${bin}:${process.env['PATH']}` } });
      const done = collect(child, 30_000);
      for (let i = 0; i < 6000 && !existsSync(`${log}.pid`); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(existsSync(`${log}.pid`), 'the step started');
      child.kill('SIGTERM');
      const r = await done;
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(readLines(log), ['error.d signal'], r.stderr);
      assert.equal(isProcessAlive(Number(readFileSync(`${log}.pid`, 'utf8'))), false, 'the step was stopped');
    }),
  );
});
