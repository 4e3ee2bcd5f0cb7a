// units.install's timeouts from the ini, FixedRandomDelay, and units.uninstall, in temp unit dirs.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { asNobody, json } from '../helpers/cli.js';
import { iniWith, withBox } from '../helpers/phases.js';

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const timeoutOf = (file: string) => /^TimeoutStartSec=(.*)$/m.exec(readFileSync(file, 'utf8'))?.[1];

describe('units.install', () => {
  it(
    "TimeoutStartSec of the refresh and resume services follows the ini's run_timeout (+15 min); timers have FixedRandomDelay=yes",
    withBox(iniWith({ run_timeout: '8h' }), async (box) => {
      const dir = join(box.dir, 'units');
      const r = await box.run(['units.install', '--dir', dir, '--no-reload', '--config', box.config]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /TimeoutStartSec=8h 15min \(run_timeout of .*bootstrap\.ini \+ 15 min\)/);
      assert.equal(timeoutOf(join(dir, 'bootstrap-refresh.service')), '8h 15min');
      assert.equal(timeoutOf(join(dir, 'bootstrap-resume.service')), '8h 15min');
      assert.equal(timeoutOf(join(dir, 'bootstrap-heartbeat.service')), '2min');
      for (const timer of ['bootstrap-refresh.timer', 'bootstrap-heartbeat.timer']) assert.match(readFileSync(join(dir, timer), 'utf8'), /^FixedRandomDelay=yes$/m);
      if (hasAnalyze) {
        // --man=no: the man page of Documentation= is installed by the Debian packages, not here.
        const verify = spawnSync('systemd-analyze', ['verify', '--man=no', ...readdirSync(dir).map((n) => join(dir, n))], { encoding: 'utf8' });
        assert.equal(verify.status, 0, verify.stderr);
        assert.equal(verify.stderr, '');
      }
      // run_timeout = 90 s (an odd one), and no ini at the given path yet: the default 4 h.
      writeFileSync(box.config, iniWith({ run_timeout: 90 }));
      assert.equal((await box.run(['units.install', '--dir', dir, '--no-reload'])).code, 0);
      assert.equal(timeoutOf(join(dir, 'bootstrap-refresh.service')), '16min 30s');
      const missing = await box.run(['units.install', '--dir', dir, '--no-reload', '--config', join(box.dir, 'later.ini')]);
      assert.equal(missing.code, 0, missing.stderr);
      assert.match(missing.stdout, /run_timeout 4h by default: no .*later\.ini yet/);
      assert.equal(timeoutOf(join(dir, 'bootstrap-refresh.service')), '4h 15min');
    }),
  );
});

describe('units.uninstall', () => {
  it(
    'disables and removes the units units.install wrote, never one it did not write; again: nothing to do',
    withBox(iniWith(), async (box) => {
      const dir = join(box.dir, 'units');
      assert.equal((await box.run(['units.install', '--dir', dir, '--no-reload'])).code, 0);
      // Enabled (as systemctl enable links them), an operator's own heartbeat timer, and an unrelated unit.
      mkdirSync(join(dir, 'timers.target.wants'));
      symlinkSync(join(dir, 'bootstrap-refresh.timer'), join(dir, 'timers.target.wants', 'bootstrap-refresh.timer'));
      symlinkSync('/lib/systemd/system/other.timer', join(dir, 'timers.target.wants', 'other.timer'));
      writeFileSync(join(dir, 'bootstrap-heartbeat.timer'), '# mine\n[Timer]\nOnUnitActiveSec=5min\n');
      writeFileSync(join(dir, 'other.service'), '[Service]\nExecStart=/bin/true\n');
      const r = await box.run(['units.uninstall', '--dir', dir, '--no-reload', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const report = json(r);
      assert.deepEqual(report.unlinked, [join(dir, 'timers.target.wants', 'bootstrap-refresh.timer')]);
      assert.deepEqual(report.removed, ['bootstrap-heartbeat.service', 'bootstrap-refresh.service', 'bootstrap-refresh.timer', 'bootstrap-resume.service'].map((n) => join(dir, n)));
      assert.deepEqual(report.left, [{ path: join(dir, 'bootstrap-heartbeat.timer'), reason: 'not written by units.install (no marker line): left as it is' }]);
      assert.deepEqual(readdirSync(dir).sort(), ['bootstrap-heartbeat.timer', 'other.service', 'timers.target.wants']);
      assert.deepEqual(readdirSync(join(dir, 'timers.target.wants')), ['other.timer']);
      assert.equal(readFileSync(join(dir, 'bootstrap-heartbeat.timer'), 'utf8'), '# mine\n[Timer]\nOnUnitActiveSec=5min\n');
      const again = await box.run(['units.uninstall', '--dir', dir, '--no-reload']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /^left .*bootstrap-heartbeat\.timer: not written by units\.install/m);
      assert.match(again.stdout, /no unit written by units\.install in /);
      assert.ok(existsSync(join(dir, 'other.service')));
    }),
  );

  it(
    'a unit dir it may not write: 77 as nobody, nothing removed',
    withBox(iniWith(), async (box) => {
      const dir = join(box.dir, 'units');
      assert.equal((await box.run(['units.install', '--dir', dir, '--no-reload'])).code, 0);
      chmodSync(box.dir, 0o755); // nobody may read the units, not remove them
      const r = await box.run(['units.uninstall', '--dir', dir, '--no-reload'], { prefix: asNobody });
      assert.equal(r.code, 77, r.stderr);
      assert.equal(readdirSync(dir).length, 5);
    }),
  );
});
