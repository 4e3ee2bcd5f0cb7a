// A disk that fills during a run (issue #23, 13): the state dir on a small tmpfs (1 MiB), filled
// by a step. The run exits 73 (cannot write state), its failure is the agent's (`agent/record`,
// with a message) unless a step failed first, no journal is left claiming `running`, and the
// `journal:` hint names a file only when there is one. The tmpfs is unmounted whatever happens.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { json, type Sandbox } from '../helpers/cli.js';
import { iniWith, script, withBox } from '../helpers/phases.js';

/** Runs `body` with a 1 MiB tmpfs at a fresh dir; skips where the machine allows no mount. */
async function withTmpfs(t: TestContext, body: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = mkdtempSync(join(tmpdir(), 'bootstrap-full-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'bootstrap-test-full', mnt]).status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip('cannot mount a tmpfs here');
    return;
  }
  try {
    await body(mnt);
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** The journals on disk (read after room was made again) and their statuses. */
function journalStatuses(stateDir: string): Record<string, string> {
  const dir = join(stateDir, 'runs');
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}\.json$/.test(n)) : [];
  return Object.fromEntries(names.map((n) => [n.slice(0, -5), JSON.parse(readFileSync(join(dir, n), 'utf8')).status as string]));
}

/** The human outcome's `journal:` line names a file that exists, or there is no such line. */
function assertJournalHint(stdout: string, stateDir: string, id: string): void {
  const hint = /^journal: (\S+) \(bootstrap runs\.show (\S+)\)$/m.exec(stdout);
  const file = join(stateDir, 'runs', `${id}.json`);
  if (hint) assert.deepEqual([hint[1], hint[2], existsSync(file)], [file, id, true]);
  else assert.equal(existsSync(file), false, `no journal: line, but ${file} exists`);
  assert.doesNotMatch(stdout, /^journal: -/m);
}

async function afterTheRun(box: Sandbox, stateDir: string, id: string): Promise<void> {
  rmSync(join(stateDir, '..', 'fill'), { force: true });
  const statuses = journalStatuses(stateDir);
  assert.ok(Object.values(statuses).every((s) => s !== 'running'), `no journal claims running: ${JSON.stringify(statuses)}`);
  const list = await box.run(['runs.list'], { env: { BOOTSTRAP_STATE_DIR: stateDir } });
  assert.equal(list.code, 0, list.stderr);
  assert.doesNotMatch(list.stdout, /running|interrupted/);
  if (statuses[id]) assert.match(list.stdout, new RegExp(`^${id}  provision failure`, 'm'));
}

describe('a disk that fills during a run', () => {
  it('a step leaves too little room for the journal: exit 73, failed at agent/record with the error, no `running` journal, server.status counts the failure', (t) =>
    withTmpfs(t, (mnt) =>
      withBox(iniWith(), async (box) => {
        const stateDir = join(mnt, 'state');
        // 20 KB of output (the journal's output tail), then all the room but 8 KiB taken: the step
        // itself succeeds (the launcher's one-block probe fits), its journal does not.
        script(join(box.phasesDir, 'configure.d', '10-fill'), `head -c 20000 /dev/zero | tr '\\0' x | fold -w 100\navail=$(df --output=avail -B1 "${mnt}" | tail -1)\nfallocate -l $((avail - 8192)) "${mnt}/fill"`);
        const human = await box.run(['server.provision'], { env: { BOOTSTRAP_STATE_DIR: stateDir } });
        assert.equal(human.code, 73, human.stdout + human.stderr);
        assert.match(human.stdout, /^failed at agent\/record: the run's journal could not be written, so nothing was committed: cannot write run journal \S+: no space left on device$/m);
        assert.doesNotMatch(human.stdout + human.stderr, /agent\/:/);
        assert.match(human.stdout, /^provision failure: 1 step: 0 changed, 1 unchanged, 0 skipped; the agent failed, [\d.]+ s$/m);
        const id = /bootstrap runs\.show (\S+)\)|run (\S+): failure/.exec(human.stdout + human.stderr)!.slice(1).find(Boolean)!;
        assertJournalHint(human.stdout, stateDir, id);
        await afterTheRun(box, stateDir, id);
        const status = await box.run(['server.status'], { env: { BOOTSTRAP_STATE_DIR: stateDir } });
        assert.match(status.stdout, new RegExp(`^last run: +provision failure .*run ${id}\\)$`, 'm'));
        assert.match(status.stdout, /^last success: +none; 1 failed run since$/m);
        const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
        assert.deepEqual([state.last_run.exit_code, state.last_run.failure], [73, { phase: 'agent', step: 'record', kind: 'exit', exit_code: null }]);
      })(),
    ));

  it('a step fills the disk to the last block: the step fails (its reports may be lost), exit 73, no `running` journal, --json says where, server.status counts it, a smaller journal is written', (t) =>
    withTmpfs(t, (mnt) =>
      withBox(iniWith(), async (box) => {
        const stateDir = join(mnt, 'state');
        script(join(box.phasesDir, 'configure.d', '10-fill'), `echo filling; dd if=/dev/zero of="${mnt}/fill" bs=4k 2>/dev/null; exit 0`);
        const r = await box.run(['server.provision', '--json'], { env: { BOOTSTRAP_STATE_DIR: stateDir } });
        assert.equal(r.code, 73, r.stdout + r.stderr);
        const out = json(r);
        assert.deepEqual([out.status, out.exit_code, out.failure.phase, out.failure.step], ['failure', 73, 'configure', '10-fill']);
        assert.match(out.failure.message, /no room left/);
        assert.equal(out.journal === null, !existsSync(join(stateDir, 'runs', `${out.id}.json`)), 'journal names a file only when there is one');
        // Before room is made again.
        const status = await box.run(['server.status'], { env: { BOOTSTRAP_STATE_DIR: stateDir } });
        assert.match(status.stdout, new RegExp(`^last run: +provision failure .*run ${out.id}\\)$`, 'm'));
        assert.equal(JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')).last_run.exit_code, 73);
        // The run's spent files made room for state.json and a journal without output tails.
        const journal = JSON.parse(readFileSync(join(stateDir, 'runs', `${out.id}.json`), 'utf8'));
        assert.deepEqual([journal.status, journal.exit_code, out.journal], ['failure', 73, join(stateDir, 'runs', `${out.id}.json`)]);
        await afterTheRun(box, stateDir, out.id);
      })(),
    ));
});
