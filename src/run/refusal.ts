// Refused runs are runs: a run command refused before its first step (an untrusted step 77, a
// state dir or state.json that cannot be used 73, an invalid bootstrap.ini 78, a plan refusal)
// is journaled with status `refused`, becomes last_run, counts as a failure and is called back
// when a callback URL is known. Its exit code and one-line error stay as they are; where it could
// not be recorded, a second clause of the error says so and why.

import { readSecret } from '../callback/deliver.js';
import { runCallback } from '../callback/payload.js';
import { CallbackReporter } from '../callback/reporter.js';
import { redactUrl } from '../config/config.js';
import { BootstrapError, ConfigError, ExitCode, oneLine, toBootstrapError } from '../errors.js';
import type { Logger } from '../log/log.js';
import { effectiveProducts, enabledVersions } from '../products.js';
import { JournalStore, type RunJournal } from '../state/journal.js';
import { StateStore, type StateDoc } from '../state/state.js';
import { hasControls } from '../util/text.js';
import type { RunContext } from './context.js';
import { journalOf } from './journal-of.js';
import { lastRunOf, tallyAfter } from './record.js';
import { placeOf, placeOfInvalidConfig, type InvalidConfigPaths, type RefusalPlace } from './refusal-place.js';
import type { RunRequest } from './types.js';

const refusalCodes: number[] = [ExitCode.cantWrite, ExitCode.permission, ExitCode.config];

/**
 * Every run command starts here: its context made (bootstrap.ini and the state dir read), then
 * `start`; a refusal before the first step (73, 77, 78, a plan refusal) is recorded as a run and
 * thrown with its exit code. `paths`: where to record it when the config itself was refused.
 */
export async function startOrRefuse<T>(request: RunRequest, makeContext: () => RunContext, start: (ctx: RunContext, request: RunRequest) => Promise<T>, paths: () => InvalidConfigPaths): Promise<T> {
  const startedAt = new Date();
  let ctx: RunContext | null = null;
  try {
    ctx = makeContext();
    return await start(ctx, request);
  } catch (err) {
    throw await settleRefusal(err, request, startedAt, ctx, paths());
  }
}

/**
 * What a run command throws for `err`: a refusal recorded (recordRefusal), or `err` as it is.
 * `ctx` null: bootstrap.ini was refused, so only its 78 is a refusal, recorded where the flags,
 * the environment and the raw ini say (refusal-place.ts); any other error of the config (66, a
 * [log] file that cannot be opened, an ini root cannot read) is thrown as it is.
 */
export async function settleRefusal(err: unknown, request: RunRequest, startedAt: Date, ctx: RunContext | null, paths: InvalidConfigPaths): Promise<unknown> {
  if (!isRefusal(err, request) || (!ctx && !(err instanceof ConfigError))) return err;
  // Recording never replaces the refusal's error (nor its exit code): what fails is its clause.
  try {
    return await recordRefusal(ctx ? placeOf(ctx) : placeOfInvalidConfig(paths), request, err, startedAt);
  } catch (failed) {
    return new UnrecordedRefusalError(err, `the refusal could not be recorded: ${paths.log.mask(toBootstrapError(failed).message)}`);
  }
}

/**
 * Whether `err` refused the run before its first step: 73, 77 or 78 (what a run throws once a
 * step ran is recorded as its failure, never thrown). Not: 75 (locked, a run waits for its
 * reboot), 64 and 65 (the command line), a dry run.
 */
function isRefusal(err: unknown, request: RunRequest): err is BootstrapError {
  return !request.dryRun && err instanceof BootstrapError && refusalCodes.includes(err.exitCode);
}

/** The refusal's error, with a second clause where it could not be recorded: same exit code, same first line. */
export class UnrecordedRefusalError extends BootstrapError {
  constructor(
    readonly refusal: BootstrapError,
    readonly clause: string,
  ) {
    super(refusal.message, refusal.exitCode, refusal.hint, { cause: refusal });
  }

  override describe(): string {
    return oneLine(`${this.refusal.describe()}; ${this.clause}`);
  }
}

/** Bound on the error kept in the journal and callback (a plan refusal lists every file). */
const maxMessage = 2000;

/**
 * Records a refused run: journal (status refused), state.json (last_run, a failure counted),
 * then its callback, queued and delivered. Resolves to the error to throw: the
 * refusal itself, or with a clause saying what could not be recorded and why.
 */
export async function recordRefusal(place: RefusalPlace, request: RunRequest, refusal: BootstrapError, startedAt: Date): Promise<BootstrapError> {
  if (!place.stateDir) return new UnrecordedRefusalError(refusal, `the refusal could not be recorded: ${place.unknown ?? 'the state dir is not known'}`);
  const store = new StateStore(place.stateDir, { warn: (m) => place.log.warn(m) });
  const why = (err: unknown) => reasonOf(err, refusal, place.log);
  try {
    await store.ensureDir();
  } catch (err) {
    return new UnrecordedRefusalError(refusal, `the refusal could not be recorded${why(err)}`);
  }
  const state = await store.read().catch(() => null);
  const journals = new JournalStore(place.stateDir);
  const journal = refusedJournal(place, request, refusal, startedAt, state, await journals.newId());
  if (state) Object.assign(journal, tallyAfter(state, journal)); // unknown when state.json cannot be read
  const unjournaled = await journals.write(journal).then(() => null, (err: unknown) => err ?? new Error('unknown'));
  const unstated = await store
    .update(place.commandLine, (s) => {
      Object.assign(s, tallyAfter(s, journal)); // before last_run: an older state.json's tally is read from the previous one
      s.last_run = lastRunOf(journal);
    })
    .then(() => null, (err: unknown) => err ?? new Error('unknown'));
  // Queued once recorded, not held before: a refusal holds no run lock, so no takeover would
  // release a held callback of an agent killed here (one killed before this line sends none).
  const callbacks = reporterOf(place, place.stateDir, request);
  const queued = callbacks && (await callbacks.queue(runCallback(journal), request.callbackUrl));
  // Journals only: another run may be going on (a refusal holds no run lock), its files stay.
  await journals.pruneJournals(place.keepRuns).catch(() => {});
  if (queued) await callbacks.deliver();
  place.log.debug(`run ${journal.id}: ${journal.action} refused (exit ${refusal.exitCode})${queued ? '; called back' : ''}`);
  if (unjournaled && unstated) return new UnrecordedRefusalError(refusal, `the refusal could not be recorded${why(unstated)}`);
  if (unstated) return new UnrecordedRefusalError(refusal, `the refusal could not be recorded in state.json${why(unstated)}; it is journaled as run ${journal.id}`);
  if (unjournaled) return new UnrecordedRefusalError(refusal, `the refusal could not be journaled${why(unjournaled)}; state.json records it as run ${journal.id}`);
  return refusal;
}

/** `: REASON`, or `, for the same reason` when it is the refusal's own error (a broken state.json). */
function reasonOf(err: unknown, refusal: BootstrapError, log: Logger): string {
  const error = toBootstrapError(err);
  return error.message === refusal.message ? ', for the same reason' : `: ${log.mask(error.message)}`;
}

/** The journal of a refused run: the command's action and times, the error, no phases. */
function refusedJournal(place: RefusalPlace, request: RunRequest, refusal: BootstrapError, startedAt: Date, state: StateDoc | null, id: string): RunJournal {
  const { config } = place;
  const message = place.log.mask(refusal.describe());
  let products: Record<string, string | null> = {};
  try {
    if (config && state) products = enabledVersions(effectiveProducts(config, state));
  } catch {
    // a setting in state.json the config refuses: the versions are not known
  }
  const label = request.label !== undefined && request.label !== '' && request.label.length <= 200 && !hasControls(request.label) ? request.label : null; // as validateRequest allows
  const journal = journalOf(
    {
      id,
      action: request.action,
      command: place.commandLine,
      server: place.server,
      status: 'refused',
      startedAt: startedAt.toISOString(),
      phasesDir: place.phasesDir,
      mode: state?.mode ?? config?.server.defaultMode ?? '',
      product: request.action === 'upgrade' && request.product && config?.products.has(request.product) ? request.product : null,
      products,
      callbackUrl: request.callbackUrl ? redactUrl(request.callbackUrl) : null, // as a run's journal: --callback-url only
      label,
    },
    [],
  );
  const bounded = message.length > maxMessage ? `${message.slice(0, maxMessage)}…` : message;
  return { ...journal, exit_code: refusal.exitCode, failure: { phase: 'agent', step: '', kind: 'refused', exit_code: null, message: bounded } };
}

/**
 * The reporter of the refusal's callback, or null: no URL known, or a key that cannot sign it (a
 * callback is never sent unsigned; the refusal may be that very key).
 */
function reporterOf(place: RefusalPlace, stateDir: string, request: RunRequest): CallbackReporter | null {
  const callback = place.callback;
  if (!callback) return null;
  const reporter = new CallbackReporter({ stateDir, config: () => callback, log: quieter(place.log) });
  try {
    if (!reporter.target(request.callbackUrl)) return null;
    readSecret(callback.secretFile);
    return reporter;
  } catch (err) {
    place.log.debug(`the refusal is not called back: ${toBootstrapError(err).message}`);
    return null;
  }
}

/**
 * The log of a refusal's callback: its info lines (`delivered to …`) at debug, so the command's
 * output is its error line as before; what went wrong (warnings, errors) is still said.
 */
function quieter(log: Logger): Logger {
  const quiet: Logger = {
    error: (m) => log.error(m),
    warn: (m) => log.warn(m),
    info: (m) => log.debug(m),
    debug: (m) => log.debug(m),
    step: (source, line) => log.step(source, line),
    addSecrets: (values) => log.addSecrets(values),
    mask: (text) => log.mask(text),
    get masker() {
      return log.masker;
    },
    isEnabled: (level) => log.isEnabled(level),
    configure: (settings) => log.configure(settings),
    close: () => log.close(),
    child: (fields) => quieter(log.child(fields)),
  };
  return quiet;
}
