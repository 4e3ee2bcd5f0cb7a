// runs.list and runs.show as an operator reads them (issue #23, 12): newest first, whole failure
// reasons on one line (cut with a marker unless --wide), `failed at …` rather than kind words,
// and counts that never say `0 failed` for a run the health gate failed.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { json } from '../helpers/cli.js';
import { iniWith, script, withBox } from '../helpers/phases.js';

const gateIni = (checkScript: string) => iniWith({ health_gate: 'true', health_timeout: 1 }, `\n[heartbeat.web]\ntype = exec\ncommand = ${checkScript}\ntimeout = 5\n`);

/** A health check that fails, printing a long first line with an escape sequence in it. */
const longReason = `\x1b[31mbackend app is down: ${'x'.repeat(200)} END`;

describe('runs.list and runs.show', () => {
  it(
    'runs.list is newest first (--json too); reasons whole and escaped on one line, cut at 160 characters with a marker unless --wide',
    withBox('', async (box) => {
      const check = script(join(box.dir, 'check.sh'), `if [ -e "${box.dir}/down" ]; then printf '%s\\n' '${longReason}'; exit 1; fi\necho up`);
      writeFileSync(box.config, gateIni(check));
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo ok');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const validate = script(join(box.phasesDir, 'configure.d', '40-myapp-validate'), 'echo "bad key on line 12"; exit 1');
      assert.equal((await box.run(['server.provision'])).code, 1);
      rmSync(validate);
      writeFileSync(join(box.dir, 'down'), '');
      assert.equal((await box.run(['server.provision'])).code, 1);

      const list = json(await box.run(['runs.list', '--json'])).runs;
      assert.equal(list.length, 3);
      const ids = list.map((r: any) => r.id);
      assert.deepEqual(ids, [...ids].sort().reverse(), 'newest first');
      assert.deepEqual(list.map((r: any) => r.status), ['failure', 'failure', 'success']);

      const human = await box.run(['runs.list']);
      assert.equal(human.code, 0, human.stderr);
      const lines = human.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 4, human.stdout);
      assert.match(lines[0]!, new RegExp(`^${ids[0]}  provision failure +[\\d.]+ s  the health gate \\(web\\): unhealthy after 1 s: web: exit 1: \\\\x1b\\[31mbackend app is down: x+…$`));
      assert.equal(lines[0]!.length - lines[0]!.indexOf('the health gate'), 160);
      assert.match(lines[1]!, new RegExp(`^${ids[1]}  provision failure +[\\d.]+ s  configure/40-myapp-validate: exit 1$`));
      assert.match(lines[2]!, new RegExp(`^${ids[2]}  provision success +[\\d.]+ s$`));
      assert.match(lines[3]!, /^\(reasons cut at 160 characters: runs\.list --wide shows them whole/);
      assert.doesNotMatch(human.stdout, /\x1b/, 'no raw escape reaches the terminal');

      const wide = await box.run(['runs.list', '--wide']);
      assert.equal(wide.stdout.trimEnd().split('\n').length, 3);
      assert.match(wide.stdout, /backend app is down: x{200} END$/m);
      assert.doesNotMatch(wide.stdout, /…|\x1b/);
      assert.match((await box.run(['runs.list', '--help'])).stdout, /newest first/);
    }),
  );

  it(
    'a run failed by the health gate: no `0 failed` (outcome, -q, runs.show, log); --json counts stay steps, failure names the gate; runs.show says `failed at …: exit 1`',
    withBox('', async (box) => {
      writeFileSync(box.config, gateIni('false'));
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo ok');
      const run = await box.run(['server.provision']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /^provision failure: 1 step: 0 changed, 1 unchanged, 0 skipped; the health gate failed, [\d.]+ s$/m);
      assert.match(run.stdout, /^failed at the health gate \(web\): unhealthy after 1 s: web: exit 1$/m);
      assert.match(run.stderr, /failure \(1 step: 0 changed, 1 unchanged, 0 skipped; the health gate failed; /);
      for (const out of [run.stdout, run.stderr, (await box.run(['runs.show'])).stdout]) assert.doesNotMatch(out, /0 failed/);
      const brief = await box.run(['server.provision', '-q']);
      assert.match(brief.stdout, /^provision failure \(1 step: 0 changed, 1 unchanged, 0 skipped; the health gate failed; [\d.]+ s, run \S+\): failed at the health gate \(web\): /);
      const doc = json(await box.run(['runs.show', '--json']));
      assert.deepEqual(doc.counts, { changed: 0, unchanged: 1, skipped: 0, failed: 0 }, 'counts are steps (as callbacks and metrics)');
      assert.equal(doc.failure.kind, 'heartbeat');
      const state = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
      assert.equal(state.failed_runs_since_success, 2, 'two failed runs on a fresh state are two (not three)');

      writeFileSync(box.config, iniWith());
      script(join(box.phasesDir, 'configure.d', '40-myapp-validate'), 'exit 1');
      assert.equal((await box.run(['server.provision'])).code, 1);
      const shown = await box.run(['runs.show']);
      assert.match(shown.stdout, /^run \S+: provision failure \(exit 1\)$/m);
      assert.match(shown.stdout, /^failed at configure\/40-myapp-validate: exit 1$/m);
      assert.match(shown.stdout, /^2 steps: 0 changed, 1 unchanged, 0 skipped, 1 failed$/m);
      assert.doesNotMatch(shown.stdout, /exit: exit/);
    }),
  );

  it(
    'the first failed or refused run on a fresh state counts once (failed_runs_since_success: 1, as its journal says)',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-no-shebang'), 'echo x');
      writeFileSync(join(box.phasesDir, 'configure.d', '10-no-shebang'), 'echo x\n');
      const refused = await box.run(['server.provision']);
      assert.equal(refused.code, 78, refused.stderr);
      const state = JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
      const journal = json(await box.run(['runs.show', '--json']));
      assert.deepEqual([state.last_run.status, state.failed_runs_since_success, journal.failed_runs_since_success], ['refused', 1, 1]);
    }),
  );

  it(
    'a `running` journal whose run holds no run lock is listed as interrupted (--json: alive false)',
    withBox(iniWith(), async (box) => {
      script(join(box.phasesDir, 'configure.d', '10-a'), 'echo ok');
      assert.equal((await box.run(['server.provision'])).code, 0);
      const done = json(await box.run(['runs.show', '--json']));
      const id = done.id.replace(/-[0-9a-f]{6}$/, '-ffffff');
      writeFileSync(join(box.stateDir, 'runs', `${id}.json`), JSON.stringify({ ...done, id, status: 'running', exit_code: null, failure: null }));
      const list = await box.run(['runs.list']);
      assert.match(list.stdout.split('\n')[0]!, new RegExp(`^${id}  provision interrupted +[\\d.]+ s  its agent is gone \\(no run holds the run lock\\)$`));
      const runs = json(await box.run(['runs.list', '--json'])).runs;
      assert.deepEqual([runs[0].id, runs[0].alive, runs[1].alive], [id, false, undefined]);
    }),
  );
});
