// #23, failing safe: a failed product.set --apply puts its values back; heartbeats per mode; a
// failed first provision is retried by the refresh; what a step that reports nothing counts as.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, json, root, type Sandbox } from '../helpers/cli.js';
import { validate } from '../helpers/json-schema.js';
import { iniWith, readLines, script, withBox } from '../helpers/phases.js';

const state = (box: Sandbox) => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
const maxconn = (box: Sandbox) => state(box).products.haproxy?.settings.maxconn;

/** haproxy's config step: refuses a maxconn below 1 (as haproxy would fail to start). */
function haproxyStep(box: Sandbox): void {
  script(join(box.phasesDir, 'configure.d', '20-haproxy'), 'echo "maxconn=$BOOTSTRAP_HAPROXY_MAXCONN" >> "$LOG"\n[ "$BOOTSTRAP_HAPROXY_MAXCONN" -gt 0 ] || { echo "haproxy: maxconn must be positive"; exit 1; }');
}

/**
 * Until the slow step has written its first line to `file` (it then holds the run lock): bounded,
 * and a failure when it never does, rather than going on after a fixed number of polls (5 s
 * without a Node start and a run up to the step on a loaded machine).
 */
async function stepStarted(file: string, withinMs = 60_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (readLines(file).length === 0) {
    assert.ok(Date.now() < deadline, `${file}: the slow step did not start within ${withinMs} ms`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

describe('product.set --apply is one change', () => {
  it(
    'a run that fails puts the previous value back (exit 1, the output says so; --json settings_restored); --keep-on-failure keeps it',
    withBox(iniWith(), async (box, log) => {
      haproxyStep(box);
      const env = { LOG: log };
      assert.equal((await box.run(['server.provision'], { env })).code, 0);
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=5000', '--apply'], { env })).code, 0);
      const bad = await box.run(['product.set', 'haproxy.maxconn=-5', '--apply'], { env });
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stdout, /^settings put back: haproxy\.maxconn = 5000$/m);
      assert.equal(maxconn(box), 5000);
      assert.match(bad.stderr, /product\.set by uid \d+: haproxy\.maxconn -5 → 5000 \(put back: the run of --apply did not succeed\)/);

      const j = json(await box.run(['product.set', 'haproxy.maxconn=-6', '--apply', '--json'], { env }));
      assert.equal(j.status, 'failure');
      assert.equal(j.settings_restored, true);
      assert.deepEqual(j.settings.restored, [{ product: 'haproxy', setting: 'maxconn', value: 5000, origin: 'set' }]);
      assert.deepEqual(j.settings.kept, []);
      assert.equal(maxconn(box), 5000);

      const kept = await box.run(['product.set', 'haproxy.maxconn=-7', '--apply', '--keep-on-failure', '--json'], { env });
      assert.equal(kept.code, 1);
      assert.equal(json(kept).settings_restored, false);
      assert.deepEqual(json(kept).settings.kept, [{ product: 'haproxy', setting: 'maxconn', value: -7, why: 'keep-on-failure' }]);
      assert.equal(maxconn(box), -7);
      const usage = await box.run(['product.set', 'haproxy.maxconn=1', '--keep-on-failure']);
      assert.equal(usage.code, 64);
      assert.match(usage.stderr, /--keep-on-failure is for the run of --apply/);
      // The next refresh still applies it (and fails): what --keep-on-failure asks for.
      assert.equal((await box.run(['server.refresh'], { env })).code, 1);
      assert.equal(readLines(log).at(-1), 'maxconn=-7');
    }),
  );

  it(
    'product.unset --apply: a failed run sets the value again; a value never set goes back to unset',
    withBox(iniWith(), async (box, log) => {
      haproxyStep(box);
      const env = { LOG: log };
      assert.equal((await box.run(['server.provision'], { env })).code, 0);
      // The default (4096) fails here: the unset is put back.
      writeFileSync(box.config, readFileSync(box.config, 'utf8').replace('maxconn = int:4096', 'maxconn = int:0'));
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=300', '--apply'], { env })).code, 0);
      const r = await box.run(['product.unset', 'haproxy.maxconn', '--apply'], { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /^settings put back: haproxy\.maxconn = 300$/m);
      assert.equal(maxconn(box), 300);
      // Set where it was not set: put back to not set (the default), not to the default's value.
      assert.equal((await box.run(['product.unset', 'haproxy.maxconn'], { env })).code, 0);
      writeFileSync(box.config, readFileSync(box.config, 'utf8').replace('maxconn = int:0', 'maxconn = int:10'));
      const back = await box.run(['product.set', 'haproxy.maxconn=-1', '--apply'], { env });
      assert.equal(back.code, 1);
      assert.match(back.stdout, /^settings put back: haproxy\.maxconn = 10 \(default\)$/m);
      assert.equal(Object.hasOwn(state(box).products.haproxy.settings, 'maxconn'), false);
    }),
  );

  it(
    'a value another command set while the run went is not clobbered: reported kept; a run refused (lock held) puts back too',
    withBox(iniWith(), async (box, log) => {
      haproxyStep(box);
      // The step sets maxconn itself (as another operator would meanwhile), then fails.
      script(join(box.phasesDir, 'configure.d', '30-other'), `[ -e "$LOG.other" ] && { BOOTSTRAP_CONFIG=${box.config} BOOTSTRAP_STATE_DIR=${box.stateDir} "$NODE" "$BIN" product.set haproxy.maxconn=777 haproxy.bind_port=8081 >/dev/null; exit 1; }; exit 0`);
      const env = { LOG: log, NODE: process.execPath, BIN: join(import.meta.dirname, '../../../bin/bootstrap') };
      assert.equal((await box.run(['server.provision'], { env })).code, 0);
      writeFileSync(`${log}.other`, '');
      const r = await box.run(['product.set', 'haproxy.maxconn=9000', 'haproxy.bind_port=8080', '--apply', '--json'], { env });
      assert.equal(r.code, 1, r.stderr);
      const j = json(r);
      assert.equal(j.settings_restored, false);
      assert.deepEqual(j.settings.kept.map((k: { setting: string; why: string }) => [k.setting, k.why]), [['maxconn', 'changed since'], ['bind_port', 'changed since']]);
      assert.equal(maxconn(box), 777);

      // Refused: another run holds the lock (no --wait): nothing was applied, the value goes back.
      script(join(box.phasesDir, 'configure.d', '30-other'), 'echo started >> "$LOG.slow"; sleep 30');
      const holder = box.start(['server.refresh'], { env });
      const held = collect(holder);
      await stepStarted(`${log}.slow`);
      const refused = await box.run(['product.set', 'haproxy.maxconn=1234', '--apply'], { env });
      holder.kill('SIGTERM');
      await held;
      assert.equal(refused.code, 75, refused.stderr);
      assert.match(refused.stderr, /--apply: no run succeeded; settings put back: haproxy\.maxconn = 777/);
      assert.equal(maxconn(box), 777);
    }),
  );
});

describe('product.set --apply: the other ways a run ends', () => {
  it(
    'SIGTERM during the run: stopped, error.d runs, the value is put back; a pause for a reboot keeps it (the run goes on after the boot)',
    withBox(iniWith({ kill_grace: 2, reboot_command: 'true' }), async (box, log) => {
      const env = { LOG: log, BOOTSTRAP_TEST_BOOT_ID_FILE: join(box.dir, 'boot_id') };
      writeFileSync(env.BOOTSTRAP_TEST_BOOT_ID_FILE, 'boot-1\n');
      script(join(box.phasesDir, 'configure.d', '20-haproxy'), 'echo "maxconn=$BOOTSTRAP_HAPROXY_MAXCONN" >> "$LOG"\n[ "$BOOTSTRAP_HAPROXY_MAXCONN" = 111 ] && { echo started > "$LOG.slow"; sleep 30; }\n[ "$BOOTSTRAP_HAPROXY_MAXCONN" = 222 ] && echo "new kernel" > "$BOOTSTRAP_REBOOT_FILE"\nexit 0');
      script(join(box.phasesDir, 'error.d', '10-e'), 'echo "error.d $BOOTSTRAP_FAILURE" >> "$LOG"');
      assert.equal((await box.run(['server.provision'], { env })).code, 0);
      assert.equal((await box.run(['product.set', 'haproxy.maxconn=5000', '--apply'], { env })).code, 0);

      const child = box.start(['product.set', 'haproxy.maxconn=111', '--apply', '--json'], { env });
      const done = collect(child);
      await stepStarted(`${log}.slow`);
      child.kill('SIGTERM');
      const r = await done;
      assert.equal(r.code, 1, r.stderr);
      assert.equal(json(r).failure.kind, 'signal');
      assert.equal(json(r).settings_restored, true);
      assert.equal(maxconn(box), 5000);
      assert.equal(readLines(log).at(-1), 'error.d signal');

      const paused = await box.run(['product.set', 'haproxy.maxconn=222', '--apply', '--json'], { env });
      assert.equal(json(paused).status, 'rebooting', paused.stderr);
      assert.equal(json(paused).settings_restored, undefined);
      assert.equal(maxconn(box), 222);
    }),
  );
});

describe('a failed first provision is retried by server.refresh', () => {
  it(
    'provision fails → each refresh provisions again (same --products, action provision, says so) until it succeeds; then refreshes',
    withBox(iniWith(), async (box, log) => {
      const env = { LOG: log };
      script(join(box.phasesDir, 'configure.d', '10-web'), 'echo "$BOOTSTRAP_ACTION $BOOTSTRAP_PRODUCTS" >> "$LOG"; [ -e "$LOG.ok" ]');
      const first = await box.run(['server.provision', '--products', 'haproxy'], { env });
      assert.equal(first.code, 1, first.stderr);
      assert.equal(state(box).provisioned_at, null);
      assert.deepEqual(state(box).provision_requested.products, ['haproxy']);

      const again = await box.run(['server.refresh'], { env });
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, /server\.refresh: the provision asked for at \S+ never succeeded; provisioning again \(products haproxy\)/);
      assert.equal(json(await box.run(['runs.show', 'last', '--json'])).action, 'provision');

      writeFileSync(`${log}.ok`, '');
      const fixed = await box.run(['server.refresh', '--json'], { env });
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.equal(json(fixed).status, 'success');
      assert.ok(state(box).provisioned_at);
      assert.equal(state(box).products.deepfiler?.enabled, false, 'the products of the provision asked for');
      assert.equal((await box.run(['server.refresh'], { env })).code, 0);
      assert.deepEqual(readLines(log).map((l) => l.split(' ')[0]), ['provision', 'provision', 'provision', 'refresh']);
    }),
  );

  it(
    'a server never asked to provision: refresh is exit 0, nothing to do, and runs nothing',
    withBox(iniWith(), async (box, log) => {
      script(join(box.phasesDir, 'configure.d', '10-web'), 'echo ran >> "$LOG"');
      const r = await box.run(['server.refresh'], { env: { LOG: log } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /never provisioned; nothing to refresh/);
      // A dry run of a provision asks for nothing either.
      assert.equal((await box.run(['server.provision', '--dry-run'], { env: { LOG: log } })).code, 0);
      assert.equal((await box.run(['server.refresh'], { env: { LOG: log } })).code, 0);
      assert.deepEqual(readLines(log), []);
    }),
  );
});

describe('[heartbeat.NAME] modes: checks belong to modes', () => {
  /** haproxy marks the server MAINT in maintenance: its check fails then, and belongs to active and standby only. */
  const ini = (flag: string, prom: string) =>
    iniWith({ health_gate: 'true', health_timeout: 3 }, `\n[heartbeat.haproxy]\ntype = exec\ncommand = test ! -e ${flag}\nmodes = active, standby\n\n[heartbeat.disk]\ntype = exec\ncommand = true\n\n[metrics]\ntextfile_dir = ${prom}\n`);

  it(
    'server.mode maintenance passes the health gate, a refresh in maintenance too; checkup skips haproxy (not run, no heartbeat_up); heartbeat.get haproxy runs it',
    withBox(iniWith(), async (box) => {
        writeFileSync(box.config, ini(join(box.dir, 'maint'), join(box.dir, 'prom')));
        mkdirSync(join(box.dir, 'prom'), { mode: 0o755 });
        const maint = join(box.dir, 'maint');
        script(join(box.phasesDir, 'configure.d', '10-haproxy'), `if [ "$BOOTSTRAP_MODE" = maintenance ]; then touch ${maint}; else rm -f ${maint}; fi`);
        assert.equal((await box.run(['server.provision'])).code, 0);
        const mode = await box.run(['server.mode', 'maintenance']);
        assert.equal(mode.code, 0, mode.stderr);
        assert.match(mode.stderr, /health gate: all 1 checks healthy; not run in mode maintenance: haproxy/);
        assert.equal(json(await box.run(['runs.show', 'last', '--json'])).health.not_run[0].name, 'haproxy');
        assert.equal((await box.run(['server.refresh'])).code, 0);

        const checkup = await box.run(['heartbeat.checkup']);
        assert.equal(checkup.code, 0, checkup.stdout);
        assert.match(checkup.stdout, /^not run in mode maintenance: haproxy \(modes active, standby\)$/m);
        const j = json(await box.run(['heartbeat.checkup', '--json']));
        assert.equal(j.mode, 'maintenance');
        assert.deepEqual(j.results.map((r: { name: string }) => r.name), ['disk']);
        assert.deepEqual(j.not_run, [{ name: 'haproxy', type: 'exec', modes: ['active', 'standby'] }]);
        const schema = JSON.parse(readFileSync(join(root, 'schema/callback.schema.json'), 'utf8'));
        assert.deepEqual(validate(schema.properties.heartbeat, j), [], 'the callback schema describes mode and not_run');
        const metrics = readFileSync(join(box.dir, 'prom', 'bootstrap_heartbeat.prom'), 'utf8');
        assert.match(metrics, /^bootstrap_heartbeat_up\{check="disk"\} 1$/m);
        assert.doesNotMatch(metrics, /bootstrap_heartbeat_up\{check="haproxy"\}/);
        assert.match(metrics, /^bootstrap_heartbeat_not_run\{check="haproxy"\} 1$/m);
        assert.match(metrics, /^bootstrap_heartbeat_healthy 1$/m);

        // Asked for by name, it runs whatever the mode.
        const get = await box.run(['heartbeat.get', 'haproxy', '--json']);
        assert.equal(get.code, 1);
        assert.equal(json(get).results[0].healthy, false);

        // Back in standby, the check is run again by the gate and the checkup.
        assert.equal((await box.run(['server.mode', 'standby'])).code, 0);
        assert.deepEqual(json(await box.run(['heartbeat.checkup', '--json'])).results.map((r: { name: string }) => r.name), ['disk', 'haproxy']);
    }),
  );

  it(
    'an unknown mode, or an empty list, is refused (78) naming the section and key',
    withBox(iniWith(), async (box) => {
      const base = readFileSync(box.config, 'utf8');
      writeFileSync(box.config, `${base}\n[heartbeat.web]\ntype = exec\ncommand = true\nmodes = active, maintenace\n`);
      const r = await box.run(['heartbeat.checkup']);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /\[heartbeat\.web\] modes: 'maintenace' is not one of \[server\] modes/);
      assert.match(r.stderr, /active, standby, maintenance/);
      writeFileSync(box.config, `${base}\n[heartbeat.web]\ntype = exec\ncommand = true\nmodes =\n`);
      const empty = await box.run(['heartbeat.checkup']);
      assert.equal(empty.code, 78);
      assert.match(empty.stderr, /\[heartbeat\.web\] modes: is empty/);
    }),
  );
});

describe('[phases] unreported: what a step that reports nothing counts as', () => {
  const steps = (box: Sandbox) => {
    script(join(box.phasesDir, 'configure.d', '10-silent'), 'exit 0'); // an os-refresh-config step: reports nothing
    script(join(box.phasesDir, 'configure.d', '20-skipped'), 'exit 0');
    script(join(box.phasesDir, 'configure.d', '20-skipped.if'), 'exit 1');
  };

  it(
    'default unchanged: --detailed-exitcodes 0; changed: 2, counted changed in the journal, the callback counts and the summary',
    withBox(iniWith(), async (box) => {
      steps(box);
      const quiet = await box.run(['server.provision', '--detailed-exitcodes', '--json']);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.deepEqual(json(quiet).counts, { changed: 0, unchanged: 1, skipped: 1, failed: 0 });

      writeFileSync(box.config, readFileSync(box.config, 'utf8').replace('[phases]\n', '[phases]\nunreported = changed\n'));
      const loud = await box.run(['server.refresh', '--detailed-exitcodes']);
      assert.equal(loud.code, 2, loud.stderr);
      assert.match(loud.stdout, /1 changed, 0 unchanged, 1 skipped, 0 failed/);
      const j = json(await box.run(['runs.show', 'last', '--json']));
      assert.equal(j.phases.find((p: { phase: string }) => p.phase === 'configure').steps[0].unreported, 'changed');

      // Recorded when the run ran: the journal reads the same after the ini changes back.
      const id = j.id;
      writeFileSync(box.config, readFileSync(box.config, 'utf8').replace('unreported = changed\n', 'unreported = unchanged\n'));
      assert.deepEqual(json(await box.run(['runs.show', id, '--json'])).counts, { changed: 1, unchanged: 0, skipped: 1, failed: 0 });
      assert.equal((await box.run(['server.refresh', '--detailed-exitcodes'])).code, 0);
    }),
  );

  it(
    'a value other than unchanged or changed is refused (78)',
    withBox(iniWith({ unreported: 'sometimes' }), async (box) => {
      const r = await box.run(['server.provision']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /\[phases\] unreported: 'sometimes' is not one of unchanged, changed/);
    }),
  );
});
