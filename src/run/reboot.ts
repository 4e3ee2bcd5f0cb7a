// The pause state machine of a run whose step asked for a reboot, and the only writer of
// state.json's paused_run:
//   pause     the pause is recorded (callback held, journal `rebooting`, paused_run, callback
//             released), then [phases] reboot_command runs (pauseForReboot);
//   resume    after the reboot, server.resume (or the timer's refresh) marks the pause
//             `resuming` and the run goes on after the step that asked (prepareResume);
//   abandon   server.resume --abandon, or a pause that cannot be resumed: the run ends as failed;
//   end       the run's final record, or a takeover of its dead agent, clears the pause (endPause).

import { runCallback } from '../callback/payload.js';
import { ConfigError } from '../errors.js';
import type { Failure } from '../pipeline/step-result.js';
import { resumeRefusal, type RebootRequest } from '../pipeline/pipeline.js';
import { refusalOf, refusedPrograms } from '../pipeline/plan.js';
import { enabledVersions } from '../products.js';
import { JournalStore, type RebootRecord, type RunJournal } from '../state/journal.js';
import type { PausedRun, StateDoc } from '../state/state.js';
import { describeChild, runChild } from '../util/child.js';
import { bootId } from '../util/process.js';
import { resolveProgram } from '../util/trust.js';
import { maskSecrets, planOf, type RunContext } from './context.js';
import { journalOf } from './journal-of.js';
import { resolveIntent } from './request.js';
import { readSnapshot, type RunLockRecord } from './run-files.js';
import type { Intent, Resumed, RunAction, RunRequest } from './types.js';

/** What a step's request for a reboot came to: the run paused (its pause recorded, the reboot command ran), or it fails there. */
export type PauseResult = { paused: true } | { paused: false; failure: Failure };

/** What a paused run resumes with, or why it cannot resume now (it still waits, with its snapshot). */
export type ResumePlan = { refused: ConfigError } | { request: RunRequest; intent: Intent; resumed: Resumed };

/**
 * A step asked for a reboot (and its check passed): past max_reboots the run fails (kind
 * reboot). Otherwise the pause is recorded so that nothing contradicts anything else across a
 * crash — callback held, journal `rebooting`, state.json's paused_run, callback released — the
 * lock record says the run waits, and reboot_command runs. If that fails, the run fails (kind
 * reboot); its final record clears the pause. Paused, the run keeps its snapshot (perform.ts).
 */
export async function pauseForReboot(
  ctx: RunContext,
  o: {
    at: RebootRequest;
    request: RunRequest;
    runId: string;
    /** The run lock, to record that the run waits for its reboot. */
    lock: RunLockRecord;
    reboots: RebootRecord[];
    journal: () => RunJournal;
    live: { stop(): Promise<unknown> };
    previous: PausedRun | undefined;
  },
): Promise<PauseResult> {
  const { at, runId } = o;
  const phases = ctx.config.phases;
  const count = (o.previous?.reboots ?? 0) + 1;
  const where = { phase: at.phase, step: at.step };
  if (count > phases.maxReboots) {
    return { paused: false, failure: { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but this run already rebooted ${count - 1} time${count === 2 ? '' : 's'} ([phases] max_reboots = ${phases.maxReboots})` } };
  }
  const requestedAt = new Date().toISOString();
  o.reboots.push({ ...where, reason: at.reason, requested_at: requestedAt });
  await o.live.stop();
  const journal = o.journal();
  const paused: PausedRun = { id: runId, action: journal.action, label: journal.label ?? null, ...where, reason: at.reason, requested_at: requestedAt, boot_id: bootId(ctx.env), reboots: count, resuming: null };
  const held = await ctx.callbacks.hold(runCallback(journal), o.request.callbackUrl, `${runId}.reboot-${count}`);
  await new JournalStore(ctx.stateDir).write(journal);
  await ctx.store.update(ctx.commandLine, (s) => {
    s.paused_run = paused;
  });
  if (held) await ctx.callbacks.release(held, journal.id);
  if (held) await ctx.callbacks.deliver();
  await o.lock.update({ waiting: 'reboot' });
  const argv = phases.rebootCommand;
  ctx.log.warn(`run ${runId} paused: ${at.phase}/${at.step} asked for a reboot (${at.reason}); running ${argv.join(' ')}`);
  const failed = await runRebootCommand(ctx, argv);
  if (!failed) return { paused: true };
  return { paused: false, failure: { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but the reboot command failed: ${argv.join(' ')}: ${failed}` } };
}

/**
 * server.resume: continue the run after the step that asked for the reboot, with the intent of
 * its snapshot (settings changed since are not picked up), or end it as failed (abandon).
 * Refused (nothing ran) when the phases changed under the pause.
 */
export async function prepareResume(ctx: RunContext, request: RunRequest, paused: PausedRun, snapshotFile: string): Promise<ResumePlan> {
  const journal = await new JournalStore(ctx.stateDir).read(paused.id).catch(() => null);
  const snapshot = await readSnapshot(snapshotFile);
  const saved = typeof snapshot === 'string' ? null : snapshot;
  const abandon = request.resume === 'abandon' || !saved || !journal;
  if (!saved || !journal) ctx.log.error(`run ${paused.id} cannot be resumed: its ${!saved ? `configuration snapshot ${snapshotFile} ${snapshot}` : 'journal is gone'}; it ends as failed`);
  const state = await ctx.store.read();
  const intent = saved?.intent ?? resolveIntent(ctx.config, state, { action: 'refresh' });
  const original: RunRequest = { ...request, action: paused.action as RunAction, ...(saved?.request ?? {}), resume: abandon ? 'abandon' : 'continue' };
  const refusal = abandon ? null : resumeRefusal(planOf(ctx), journal!.phases, paused);
  if (refusal) {
    // Nothing ran: the run still waits, with its snapshot, for the phases to be put back or for --abandon.
    return { refused: new ConfigError(`run ${paused.id} (${paused.action}) cannot resume: ${refusal}`, 'put the phases back as they were when it paused and run bootstrap server.resume again, or end the run: bootstrap server.resume --abandon') };
  }
  if (!abandon) await markResuming(ctx, paused);
  else ctx.log.warn(`abandoning run ${paused.id} (${paused.action}), which waits for a reboot: backouts (${ctx.config.phases.backout}) and error.d run`);
  maskSecrets(ctx, intent.products);
  const stub = () =>
    journalOf({ id: paused.id, action: paused.action, command: ctx.commandLine, server: ctx.config.server.name, status: 'rebooting', startedAt: paused.requested_at, phasesDir: ctx.phasesDir, mode: intent.mode, products: enabledVersions(intent.products), label: paused.label }, []);
  return { request: original, intent, resumed: { paused, journal: journal ?? stub() } };
}

async function markResuming(ctx: RunContext, paused: PausedRun): Promise<void> {
  ctx.log.info(`resuming run ${paused.id} (${paused.action}) after the reboot ${paused.phase}/${paused.step} asked for; it keeps the configuration it started with (settings changed since apply at the next run)`);
  // From here on a killed agent leaves the run to be recorded as failed, never resumed twice.
  await ctx.store.update(ctx.commandLine, (s) => {
    if (s.paused_run?.id === paused.id) s.paused_run.resuming = { boot_id: bootId(ctx.env), started_at: new Date().toISOString() };
  });
}

/** The run `runId` is over (recorded, or settled by a takeover): its pause, if any, ends — within the caller's state update. */
export function endPause(s: StateDoc, runId: string): void {
  if (s.paused_run?.id === runId) s.paused_run = null;
}

/**
 * Runs [phases] reboot_command as a step is run, through util/child's bounded runner: no shell,
 * bounded by script_timeout (its whole process tree, TERM then KILL), over when it exits (what
 * it leaves running is ended then, so a daemon holding its output cannot hold the run), its
 * output to the log; and only by the path the trust rules of steps accept (util/trust), judged
 * again now. Resolves to why it failed, or null.
 */
async function runRebootCommand(ctx: RunContext, argv: string[]): Promise<string | null> {
  const file = resolveProgram(argv[0]!, ctx.env);
  if (!file) return `cannot run it: ${argv[0]} not found${argv[0]!.includes('/') ? '' : ' on PATH'}`;
  const refused = refusedPrograms([{ key: '[phases] reboot_command', argv }], ctx.env);
  const refusal = refusalOf(refused, ctx.config.phases.allowInsecure);
  if (refusal) return refusal.message;
  const timeoutMs = ctx.config.phases.scriptTimeoutMs;
  const r = await runChild({ file, args: argv.slice(1), argv0: argv[0], env: ctx.env, timeoutMs, killGraceMs: ctx.config.phases.killGraceMs, masker: ctx.log.masker, onLine: (line) => ctx.log.step('reboot', line) });
  return describeChild(r, timeoutMs);
}
