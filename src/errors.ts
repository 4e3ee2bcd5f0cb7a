// Typed errors. Each carries the exit code of the contract, so the CLI is the one place that turns
// an error into an exit code and nothing else has to guess.

import { showControls } from './util/text.js';

export const ExitCode = {
  ok: 0,
  failed: 1,
  /** Only with --detailed-exitcodes: the run succeeded and steps reported changes, or it paused for a reboot. */
  changes: 2,
  /** server.verify: a step's check failed (the server drifted from its configuration); none failed to run. */
  drift: 2,
  usage: 64,
  data: 65,
  noConfig: 66,
  internal: 70,
  /** The runtime is unusable (Node older than the floor; bin/bootstrap checks it before anything loads). */
  unavailable: 69,
  cantWrite: 73,
  locked: 75,
  permission: 77,
  config: 78,
} as const;

/**
 * Exit statuses of the programs bootstrap runs (steps, conditions, environment.d): the shell's
 * conventions and the condition contract, not bootstrap's own exit codes.
 */
export const StepExit = {
  ok: 0,
  /** A condition (NAME.if) that exits 1 skips its step. */
  skip: 1,
  cannotExecute: 126,
  notFound: 127,
  /** A status above this is a death by signal (status - 128). */
  signalBase: 128,
} as const;

export class BootstrapError extends Error {
  readonly exitCode: number;
  /** What to do about it: printed in parentheses after the message. */
  readonly hint: string | undefined;

  constructor(message: string, exitCode: number, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = hint;
  }

  /** The one line the CLI prints after `bootstrap: `: control characters are shown, never acted on. */
  describe(): string {
    return oneLine(this.hint ? `${this.message} (${this.hint})` : this.message);
  }
}

export class UsageError extends BootstrapError {
  constructor(message: string, hint = 'see bootstrap --help') {
    super(message, ExitCode.usage, hint);
  }
}

/** Unknown product, setting or mode, or a value of the wrong type. */
export class DataError extends BootstrapError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.data, hint);
  }
}

export class ConfigMissingError extends BootstrapError {
  constructor(
    readonly file: string,
    /** Where the shipped example is, to copy from. */
    example?: string,
  ) {
    super(`config file ${file} not found`, ExitCode.noConfig, `pass --config or set BOOTSTRAP_CONFIG${example ? `; an example to start from: ${example}` : ''}`);
  }
}

/** bootstrap.ini is malformed or inconsistent; the message names the section and key. */
export class ConfigError extends BootstrapError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.config, hint);
  }
}

/** The state dir or a state file cannot be created, read back or written. */
export class StateError extends BootstrapError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, ExitCode.cantWrite, hint, options);
  }
}

export class PermissionDeniedError extends BootstrapError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.permission, hint);
  }
}

export interface LockHolder {
  pid: number;
  pidStart?: string;
  host: string;
  command: string;
  startedAt: string;
}

export class LockHeldError extends BootstrapError {
  constructor(
    readonly lockPath: string,
    readonly holder: LockHolder | null,
    /** Who holds a lock that is not ours (os-refresh-config's), named before the path. */
    other?: string,
  ) {
    const who = other
      ? `${other} ${lockPath}`
      : holder
        ? `${holder.command} is already running (pid ${holder.pid}, started ${holder.startedAt}, lock ${lockPath})`
        : `another run is taking the lock (lock ${lockPath})`;
    super(who, ExitCode.locked, 'try again later or use --wait');
  }

  // The issue spells this one with a semicolon: "...lock /var/bootstrap/run.lock); try again later or use --wait".
  override describe(): string {
    return oneLine(`${this.message}; ${this.hint}`);
  }
}

/**
 * A run waits for the reboot one of its steps asked for: no other run may start (75) until
 * `server.resume` continues it after the reboot, or ends it (`--abandon`).
 */
export class RunWaitingError extends BootstrapError {
  constructor(paused: { id: string; action: string; phase: string; step: string; reason: string; requested_at: string }, sameBoot = false) {
    const what = `run ${paused.id} (${paused.action}) waits for the reboot ${paused.phase}/${paused.step} asked for at ${paused.requested_at} (${paused.reason})`;
    super(
      sameBoot ? `${what}; this is still the boot it paused in` : what,
      ExitCode.locked,
      sameBoot ? 'reboot the server (bootstrap-resume.service continues the run at boot), or end the run: bootstrap server.resume --abandon' : 'after the reboot, bootstrap server.resume continues it (bootstrap-resume.service runs it at boot); or end it: bootstrap server.resume --abandon',
    );
  }
}

/**
 * `server.disable` stopped runs until `server.enable`: a run command exits 75 with the one line
 * `disabled since T by U: REASON` (`--force` runs anyway). The timer's `server.refresh` and the
 * boot's `server.resume` print the same line and exit 0 (the CLI decides that).
 */
export class DisabledError extends BootstrapError {
  constructor(readonly disabled: { since: string; by: string; reason: string }) {
    super(DisabledError.line(disabled), ExitCode.locked, 'bootstrap server.enable allows runs again; --force runs this one anyway');
  }

  /** The one line every command shows for a disabled server. */
  static line(d: { since: string; by: string; reason: string }): string {
    return oneLine(`disabled since ${d.since} by ${d.by}: ${d.reason}`);
  }
}

/** A bug. The CLI asks for a report. */
class InternalError extends BootstrapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.internal, 'this is a bug in bootstrap: please report it with the command you ran', options);
  }
}

const fsErrorCodes: Record<string, number> = {
  EACCES: ExitCode.permission,
  EPERM: ExitCode.permission,
};

/**
 * Wraps a failed file operation on the state dir: permission problems are 77, everything else
 * (read-only fs, disk full, not a directory, ...) is 73.
 */
export function stateFsError(err: unknown, what: string): BootstrapError {
  if (err instanceof BootstrapError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const reason = describeFsError(err);
  if (fsErrorCodes[code] === ExitCode.permission) {
    return new PermissionDeniedError(`cannot ${what}: ${reason}`, 'run as root or the owner of the state dir');
  }
  return new StateError(`cannot ${what}: ${reason}`, code === 'ENOSPC' ? 'free some disk space; the previous state file is intact' : undefined, { cause: err });
}

export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const messages: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
    EISDIR: 'is a directory',
    ENOSPC: 'no space left on device',
    EROFS: 'read-only file system',
    EEXIST: 'already exists',
    ELOOP: 'is a symbolic link (refusing to follow it)',
    EDQUOT: 'disk quota exceeded',
  };
  if (e?.code && messages[e.code]) return `${e.path ? `${e.path}: ` : ''}${messages[e.code]}`;
  return e?.message ?? String(err);
}

/** Turns anything thrown into a BootstrapError; unknown errors are bugs. */
export function toBootstrapError(err: unknown): BootstrapError {
  if (err instanceof BootstrapError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InternalError(message, { cause: err });
}

/** An error message is one line: newlines and other control characters become visible escapes. */
export function oneLine(text: string): string {
  return showControls(text.replace(/\r?\n/g, '\\n'));
}
