// receiver/systemd/bootstrap-receiver.service: systemd-analyze verify finds nothing to say about it, with
// ExecStart pointing at this checkout's launcher (the unit names /opt/bootstrap-agent). ~1 s.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { root } from '../helpers/cli.js';

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;

describe('the receiver unit', () => {
  it('systemd-analyze verify: no warning; the hardening profile is there', { skip: analyze ? false : 'no systemd-analyze' }, () => {
    const text = readFileSync(join(root, 'receiver/systemd/bootstrap-receiver.service'), 'utf8');
    for (const line of ['DynamicUser=yes', 'StateDirectory=bootstrap-receiver', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'SystemCallFilter=@system-service', 'CapabilityBoundingSet=']) {
      assert.match(text, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    }
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-unit-'));
    try {
      const unit = join(dir, 'bootstrap-receiver.service');
      writeFileSync(unit, text.replaceAll('/opt/bootstrap-agent/', root.endsWith('/') ? root : `${root}/`).replace('/usr/lib/bootstrap-agent/node/bin/node', process.execPath));
      const out = execFileSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
      assert.equal(out.trim(), '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
