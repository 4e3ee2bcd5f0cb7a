// A run paused for a reboot one of its steps asked for: the pause (recorded, then
// [phases] reboot_command), and server.resume (continue after the reboot, or abandon).

import { runCallback } from '../callback/payload.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';
import type { Failure } from '../pipeline/environment.js';
import { type RebootRequest, resumeRefusal } from '../pipeline/pipeline.js';
import { refusalOf, refusedPrograms } from '../pipeline/plan.js';
import { enabledVersions } from '../products.js';
import { JournalStore, type RebootRecord, type RunJournal } from '../state/journal.js';
import type { PausedRun } from '../state/state.js';
import { describeChild, runChild } from '../util/child.js';
import { bootId } from '../util/process.js';
import { resolveProgram } from '../util/trust.js';
import { maskSecrets, planOf, type RunContext } from './context.js';
import { execute } from './execute.js';
import { journalStub } from './journal-of.js';
import { resolveIntent } from './request.js';
import { readSnapshot, type RunFiles } from './run-files.js';
import type { RunAction, RunOutcome, RunRequest } from './types.js';

/**
 * server.resume: continue the run after the step that asked for the reboot, with the intent of
 * its snapshot (settings changed since are not picked up), or end it as failed (abandon).
 */
export async function resumeRun(ctx: RunContext, config: Config, request: RunRequest, paused: PausedRun, files: RunFiles, baseDir: string): Promise<RunOutcome> {
  const journals = new JournalStore(ctx.stateDir);
  const journal = await journals.read(paused.id).catch(() => null);
  const snapshot = await readSnapshot(files.snapshot);
  const saved = typeof snapshot === 'string' ? null : snapshot;
  const abandon = request.resume === 'abandon' || !saved || !journal;
  if (!saved || !journal) ctx.log.error(`run ${paused.id} cannot be resumed: its ${!saved ? `configuration snapshot ${files.snapshot} ${snapshot}` : 'journal is gone'}; it ends as failed`);
  const state = await ctx.store.read();
  const intent = saved?.intent ?? resolveIntent(config, state, { action: 'refresh' });
  const original: RunRequest = { ...request, action: paused.action as RunAction, ...(saved?.request ?? {}), resume: abandon ? 'abandon' : 'continue' };
  const refusal = abandon ? null : resumeRefusal(planOf(ctx), journal!.phases, paused);
  if (refusal) {
    // Nothing ran: the run still waits, with its snapshot, for the phases to be put back or for --abandon.
    files.keep.snapshot = true;
    throw new ConfigError(`run ${paused.id} (${paused.action}) cannot resume: ${refusal}`, 'put the phases back as they were when it paused and run bootstrap server.resume again, or end the run: bootstrap server.resume --abandon');
  }
  if (!abandon) {
    ctx.log.info(`resuming run ${paused.id} (${paused.action}) after the reboot ${paused.phase}/${paused.step} asked for; it keeps the configuration it started with (settings changed since apply at the next run)`);
    // From here on a killed agent leaves the run to be recorded as failed, never resumed twice.
    await ctx.store.update(ctx.commandLine, (s) => {
      if (s.paused_run?.id === paused.id) s.paused_run.resuming = { boot_id: bootId(ctx.env), started_at: new Date().toISOString() };
    });
  } else ctx.log.warn(`abandoning run ${paused.id} (${paused.action}), which waits for a reboot: backouts (${config.phases.backout}) and error.d run`);
  maskSecrets(ctx, intent.products);
  const stub = () => journalStub(ctx, { id: paused.id, action: paused.action, command: ctx.commandLine, status: 'rebooting', startedAt: paused.requested_at, mode: intent.mode, products: enabledVersions(intent.products), label: paused.label });
  return execute(ctx, config, original, intent, files, baseDir, { paused, journal: journal ?? stub() });
}

/**
 * A step asked for a reboot (and its check passed): past max_reboots the run fails (kind
 * reboot). Otherwise the pause is recorded so that nothing contradicts anything else across a
 * crash — callback held, journal `rebooting`, state.json's paused_run, callback released — the
 * snapshot is kept, the lock record says the run waits, and reboot_command runs. If that fails,
 * the run fails (kind reboot); its final record clears the pause.
 */
export async function pauseForReboot(
  ctx: RunContext,
  config: Config,
  request: RunRequest,
  files: RunFiles,
  o: { at: RebootRequest; reboots: RebootRecord[]; boots: unknown[]; journal: () => RunJournal; live: { stop(): Promise<unknown> }; previous: PausedRun | undefined },
): Promise<Failure | null> {
  const { at } = o;
  const count = (o.previous?.reboots ?? 0) + 1;
  const where = { phase: at.phase, step: at.step };
  if (count > config.phases.maxReboots) {
    return { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but this run already rebooted ${count - 1} time${count === 2 ? '' : 's'} ([phases] max_reboots = ${config.phases.maxReboots})` };
  }
  const requestedAt = new Date().toISOString();
  o.reboots.push({ ...where, reason: at.reason, requested_at: requestedAt });
  await o.live.stop();
  const journal = o.journal();
  const paused: PausedRun = { id: files.runId, action: journal.action, label: journal.label ?? null, ...where, reason: at.reason, requested_at: requestedAt, boot_id: bootId(ctx.env), reboots: count, resuming: null };
  const held = await ctx.callbacks.hold(runCallback(journal), request.callbackUrl, `${files.runId}.reboot-${count}`);
  await new JournalStore(ctx.stateDir).write(journal);
  await ctx.store.update(ctx.commandLine, (s) => {
    s.paused_run = paused;
  });
  files.keep.snapshot = true;
  if (held) await ctx.callbacks.release(held, journal.id);
  if (held) await ctx.callbacks.deliver();
  await files.lock.update({ waiting: 'reboot' });
  const argv = config.phases.rebootCommand;
  ctx.log.warn(`run ${files.runId} paused: ${at.phase}/${at.step} asked for a reboot (${at.reason}); running ${argv.join(' ')}`);
  const failed = await runRebootCommand(argv, ctx, config);
  if (!failed) return null;
  files.keep.snapshot = false;
  return { ...where, kind: 'reboot', exitCode: null, message: `asked for a reboot (${at.reason}), but the reboot command failed: ${argv.join(' ')}: ${failed}` };
}

/**
 * Runs [phases] reboot_command as a step is run: no shell, bounded by script_timeout (its whole
 * process tree, TERM then KILL), over when it exits (what it leaves running is ended then, so a
 * daemon holding its output cannot hold the run), its output to the log; and only by the path
 * the trust rules of steps accept (util/trust), judged again now. Resolves to why it failed, or null.
 */
async function runRebootCommand(argv: string[], ctx: RunContext, config: Config): Promise<string | null> {
  const file = resolveProgram(argv[0]!, ctx.env);
  if (!file) return `cannot run it: ${argv[0]} not found${argv[0]!.includes('/') ? '' : ' on PATH'}`;
  const refused = refusedPrograms([{ key: '[phases] reboot_command', argv }], ctx.env);
  const refusal = refusalOf(refused, config.phases.allowInsecure);
  if (refusal) return refusal.message;
  const timeoutMs = config.phases.scriptTimeoutMs;
  const r = await runChild({ file, args: argv.slice(1), argv0: argv[0], env: ctx.env, timeoutMs, killGraceMs: config.phases.killGraceMs, masker: ctx.log.masker, onLine: (line) => ctx.log.step('reboot', line) });
  return describeChild(r, timeoutMs);
}
