// Fault injection: SIGKILL the agent at random moments of product.set, server.provision and
// callback.flush, and SIGSTOP it at random moments of a run while other runs start with the
// clock stepped an hour either way (seeded, so a failure can be replayed with FAULT_SEED). After
// each: state.json parses and is the old or the new state; no lock blocks the next run; no
// callback is lost or contradicts its journal; no step the killed agent started is left running
// once the next run took the lock; no config snapshot (secrets) outlives its run; a stopped
// holder keeps its lock.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { collect, isRunning, sandbox } from '../helpers/cli.js';
import { iniWith, readLines, script } from '../helpers/phases.js';
import { httpStub } from '../helpers/servers.js';
import { trials } from '../helpers/trials.js';

const seed0 = Number(process.env['FAULT_SEED'] ?? 20261121);
let seed = seed0;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const summary = { trials: 0, failures: [] as string[] };
const [setTrials, provisionTrials, stopTrials, flushTrials] = [trials(80), trials(70), trials(20), trials(60)];

function check(ok: boolean, what: string): void {
  if (!ok) summary.failures.push(what);
  assert.ok(ok, what);
}

async function killAt(start: () => import('node:child_process').ChildProcess, maxDelayMs: number) {
  const child = start();
  const done = collect(child, 120_000);
  const delay = Math.floor(random() * maxDelayMs);
  const timer = setTimeout(() => child.kill('SIGKILL'), delay);
  const r = await done;
  clearTimeout(timer);
  return r;
}


describe('fault injection (SIGKILL and SIGSTOP at random moments, clock steps)', () => {
  after(() => {
    console.log(`faults: ${summary.trials} trials (seed ${seed0}), ${summary.failures.length} failures found${summary.failures.length ? `: ${summary.failures.slice(0, 5).join('; ')}` : ''}`);
  });

  it(`product.set: ${setTrials} trials`, async () => {
    const box = sandbox(iniWith({}, '\n[product.p]\nversion = 1\n\n[product.p.settings]\na = int:0\nb = int:0\n'));
    try {
      const state = () => JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8'));
      assert.equal((await box.run(['product.set', 'p.a=0', 'p.b=0'])).code, 0);
      for (let trial = 1; trial <= setTrials; trial++) {
        summary.trials++;
        const before = state().products.p.settings;
        await killAt(() => box.start(['product.set', `p.a=${trial}`, `p.b=${trial}`]), 160);
        let now: { a: number; b: number };
        try {
          now = state().products.p.settings;
        } catch (err) {
          check(false, `product.set trial ${trial}: state.json does not parse: ${(err as Error).message}`);
          return;
        }
        check(now.a === now.b && (now.a === before.a || now.a === trial), `product.set trial ${trial}: ${JSON.stringify(now)} is neither old ${before.a} nor new ${trial}`);
        const t0 = Date.now();
        const next = await box.run(['product.set', `p.a=${now.a}`, `p.b=${now.b}`]);
        check(next.code === 0 && Date.now() - t0 < 5000, `product.set trial ${trial}: the next product.set was blocked (${next.code}, ${Date.now() - t0} ms): ${next.stderr}`);
      }
    } finally {
      box.cleanup();
    }
  });

  it(`server.provision: ${provisionTrials} trials; callbacks are never lost and no step is left running`, async () => {
    const received = new Map<string, number>();
    const statusOf = new Map<string, string>();
    const receiver = await httpStub((req: IncomingMessage, res: ServerResponse) => {
      const id = String(req.headers['x-bootstrap-delivery']);
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        received.set(id, (received.get(id) ?? 0) + 1);
        statusOf.set(id, JSON.parse(body).status);
        res.end();
      });
    });
    const box = sandbox(iniWith({ kill_grace: 1 }, `\n[callback]\nurl = ${receiver.url}/cb\ntimeout = 5\n`));
    mkdirSync(box.phasesDir, { recursive: true });
    const pids = join(box.dir, 'pids');
    const steps: [string, string][] = [['pre-configure', '10-a'], ['configure', '10-b'], ['configure', '20-c'], ['post-configure', '10-d']];
    for (const [phase, name] of steps) {
      script(join(box.phasesDir, `${phase}.d`, name), `echo $$ >> "${pids}"; sleep 0.0$(( $$ % 5 ))`);
    }
    const state = () => (existsSync(join(box.stateDir, 'state.json')) ? JSON.parse(readFileSync(join(box.stateDir, 'state.json'), 'utf8')) : { provisioned_at: null });
    try {
      for (let trial = 1; trial <= provisionTrials; trial++) {
        summary.trials++;
        const before = state();
        await killAt(() => box.start(['server.provision', '-q']), 500);
        const startedPids = readLines(pids).map(Number);
        let after: any;
        try {
          after = state();
        } catch (err) {
          check(false, `provision trial ${trial}: state.json does not parse: ${(err as Error).message}`);
          return;
        }
        check(after.provisioned_at === before.provisioned_at || after.last_run?.status === 'success', `provision trial ${trial}: provisioned_at changed without a successful run`);
        // The next run takes the lock at once and ends what the killed one left running.
        const t0 = Date.now();
        const next = await box.run(['server.provision', '-q']);
        check(next.code === 0 && Date.now() - t0 < 15_000, `provision trial ${trial}: the next run failed or waited (${next.code}): ${next.stderr}`);
        const left = startedPids.filter(isRunning);
        check(left.length === 0, `provision trial ${trial}: steps ${left.join(',')} still running after the takeover`);
        const snapshots = readdirSync(join(box.stateDir, 'runs')).filter((n) => n.endsWith('.config.json'));
        check(snapshots.length === 0, `provision trial ${trial}: config snapshots left: ${snapshots.join(', ')}`);
      }
      // Every recorded run's callback was delivered, or still waits in the outbox.
      const flush = await box.run(['callback.flush']);
      check(flush.code === 0, `final flush: ${flush.stderr}`);
      const ids = readdirSync(join(box.stateDir, 'runs'))
        .filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{6}\.json$/.test(n))
        .map((n) => n.slice(0, -5));
      const waiting = readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json'));
      for (const id of ids) check(received.has(id) || waiting.some((w) => w.includes(id)), `run ${id}: its callback is lost`);
      // A callback never contradicts what was recorded.
      for (const id of ids) {
        const journal = JSON.parse(readFileSync(join(box.stateDir, 'runs', `${id}.json`), 'utf8'));
        if (statusOf.has(id)) check(statusOf.get(id) === journal.status, `run ${id}: callback says ${statusOf.get(id)}, journal ${journal.status}`);
      }
    } finally {
      box.cleanup();
      await receiver.close();
    }
  });

  it(`SIGSTOP: ${stopTrials} trials; a stopped holder keeps its lock against runs with the clock an hour ahead or behind`, async () => {
    const box = sandbox(iniWith());
    mkdirSync(box.phasesDir, { recursive: true });
    const log = join(box.dir, 'steps.log');
    script(join(box.phasesDir, 'configure.d', '10-a'), `echo "start $$" >> "${log}"; sleep 0.4; echo "end $$" >> "${log}"`);
    try {
      for (let trial = 1; trial <= stopTrials; trial++) {
        summary.trials++;
        const before = readLines(log).length;
        const holder = box.start(['server.provision', '-q']);
        const done = collect(holder, 60_000);
        // Stopped at a random moment of its step (0.4 s): it holds the lock for sure then.
        for (let i = 0; i < 400 && readLines(log).length === before; i++) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, Math.floor(random() * 300)));
        holder.kill('SIGSTOP');
        const offset = random() < 0.5 ? '+1h' : '-1h';
        const [stepped, plain] = await Promise.all([box.run(['server.provision', '-q'], { prefix: ['faketime', '-f', offset] }), box.run(['server.provision', '-q'])]);
        holder.kill('SIGCONT');
        const r = await done;
        const held = r.code === 0 ? [stepped.code, plain.code].every((c) => c === 75 || c === 0) : false;
        check(held, `SIGSTOP trial ${trial}: holder ${r.code}, clock ${offset} ${stepped.code}, plain ${plain.code}: ${r.stderr} ${stepped.stderr}`);
        check(!/lock was lost/.test(r.stderr), `SIGSTOP trial ${trial}: the holder lost its lock`);
      }
      // Steps never overlapped: each start is followed by its own end.
      const lines = readLines(log);
      for (let i = 0; i < lines.length; i += 2) {
        const pid = lines[i]!.split(' ')[1];
        check(lines[i] === `start ${pid}` && lines[i + 1] === `end ${pid}`, `two steps ran at once around line ${i + 1}: ${lines.slice(i, i + 3).join(' | ')}`);
      }
    } finally {
      box.cleanup();
    }
  });

  it(`callback.flush: ${flushTrials} trials; every callback arrives at least once`, async () => {
    const received = new Set<string>();
    const receiver = await httpStub((req: IncomingMessage, res: ServerResponse) => {
      received.add(String(req.headers['x-bootstrap-delivery']));
      req.resume();
      req.on('end', () => setTimeout(() => res.end(), 5));
    });
    const box = sandbox(iniWith({}, `\n[callback]\nurl = ${receiver.url}/cb\ntimeout = 30\n`));
    try {
      const { Agent } = await import('../../src/agent.js');
      const agent = new Agent({ config: box.config, stateDir: box.stateDir, env: {} });
      await agent.store.ensureDir();
      const all: string[] = [];
      for (let trial = 1; trial <= flushTrials; trial++) {
        summary.trials++;
        for (let i = 0; i < 5; i++) {
          const id = `20261121T12${String(trial).padStart(2, '0')}0${i}Z-${(trial * 16 + i).toString(16).padStart(6, '0')}`;
          all.push(id);
          await agent.queueCallback({ schema: 'bootstrap.callback', schema_version: 1, kind: 'run', id } as never);
        }
        await killAt(() => box.start(['callback.flush', '-q']), 200);
      }
      const last = await box.run(['callback.flush']);
      check(last.code === 0, `final flush: ${last.stderr}`);
      const missing = all.filter((id) => !received.has(id));
      check(missing.length === 0, `callbacks lost: ${missing.slice(0, 5).join(', ')}`);
      check(readdirSync(join(box.stateDir, 'outbox')).filter((n) => n.endsWith('.json')).length === 0, 'outbox not empty after the final flush');
    } finally {
      box.cleanup();
      await receiver.close();
    }
  });
});
