// Logging through winston, loaded (synchronously, with require) only when something is logged:
// most quick commands log nothing, and winston costs ~30 ms of start-up. `close()` waits for
// every line to be written (never cut logs with process.exit).
//
// Formats: on a terminal, human lines (colour when stderr is a TTY); under systemd
// (JOURNAL_STREAM), `<N>` syslog priority prefixes, no colour, no timestamp; elsewhere, human
// lines with an ISO timestamp. Optional JSON lines to a file. Secret values are masked in every
// line, step output included (log/mask.ts), and control characters in the human and journal
// lines are shown escaped (steps print what they like; the operator's terminal must not act on it).

import { closeSync, constants as fsConstants, createWriteStream, fstatSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { currentUid } from '../util/files.js';
import { pathTrustProblem } from '../util/trust.js';
import { dirname } from 'node:path';
import { describeFsError, PermissionDeniedError, StateError } from '../errors.js';
import { loadWinston } from './winston.js';
import type { LogLevel } from '../config/config.js';
import { Masker } from './mask.js';
import { showControls } from '../errors.js';

export interface LogEntry {
  level: LogLevel;
  message: string;
  /** Set for lines a step printed: `phase/step`. */
  source?: string;
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** A line of a step's output, shown as `phase/step | line`. */
  step(source: string, line: string): void;
  /** Values to mask from now on (secret settings, the callback secret). */
  addSecrets(values: Iterable<string>): void;
  mask(text: string): string;
  /** The secrets to mask, for text that enters the agent (pipeline/output.ts). */
  readonly masker: Masker;
  isEnabled(level: LogLevel): boolean;
  /** Applies `[log]` of bootstrap.ini: its level unless one was given explicitly, and its file. */
  configure(settings: { level?: LogLevel | undefined; file?: string | undefined }): void;
  close(): Promise<void>;
}

export interface LoggerOptions {
  level: LogLevel;
  /** The level came from the command line and wins over `[log] level`. */
  levelExplicit?: boolean;
  /** Where human lines go (default: stderr, so stdout stays for results and --json). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** systemd: JOURNAL_STREAM is set. */
  journal?: boolean;
  color?: boolean;
  file?: string | undefined;
  /** Called around every line, e.g. to clear and redraw a progress line. */
  around?: ((write: () => void) => void) | undefined;
}

const priority: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A line as the console shows it: plain (timestamped off a terminal), coloured, or journald's `<N>`. */
function formatLine(entry: LogEntry, options: LoggerOptions, stream: { isTTY?: boolean }): string {
  const e = { ...entry, message: showControls(entry.message, true) };
  const text = e.source ? `${e.source} | ${e.message}` : e.message;
  if (options.journal) return `<${priority[e.level]}>${text}`;
  const label = e.level === 'info' ? '' : `${e.level}: `;
  if (options.color) {
    const colors: Record<LogLevel, string> = { error: '\x1b[31m', warn: '\x1b[33m', info: '', debug: '\x1b[2m' };
    const c = colors[e.level];
    const src = e.source ? `\x1b[36m${e.source}\x1b[0m | ` : '';
    return `${src}${c}${label}${e.message}${c ? '\x1b[0m' : ''}`;
  }
  return `${stream.isTTY ? '' : `${new Date().toISOString()} `}${label}${text}`;
}

/** winston, loaded on the first line logged: the console stream, and the JSON file when there is one. */
function openWinston(stream: NodeJS.WritableStream, fileFd: number | undefined) {
  const winston = loadWinston();
  const { transports, format: wf } = winston;
  const list: import('winston').transport[] = [new transports.Stream({ stream, format: wf.printf((info) => String(info['line'])) })];
  let fileTransport: import('winston').transport | null = null;
  let fileStream: WriteStream | null = null;
  if (fileFd !== undefined) {
    // Written through the descriptor that was checked (prepareLogFile), never opened again by
    // name: what was judged is what is written.
    fileStream = createWriteStream('', { fd: fileFd });
    fileTransport = new transports.Stream({ stream: fileStream, format: wf.combine(wf.timestamp(), wf.json()) });
    list.push(fileTransport);
  }
  const logger = winston.createLogger({ level: 'debug', levels: rank, transports: list, exitOnError: false });
  return { logger, fileTransport, fileStream };
}

export function createLogger(initial: LoggerOptions): Logger {
  const options = { ...initial };
  const stream = options.stream ?? process.stderr;
  const masker = new Masker();
  let winstonLogger: import('winston').Logger | null = null;
  let fileTransport: import('winston').transport | null = null;
  let fileFd: number | undefined;
  let fileStream: WriteStream | null = null;
  let closed = false;

  const mask = (text: string): string => masker.mask(text);

  const load = (): void => {
    fileFd ??= options.file ? prepareLogFile(options.file) : undefined;
    ({ logger: winstonLogger, fileTransport, fileStream } = openWinston(stream, fileFd));
  };

  const write = (e: LogEntry): void => {
    const meta = e.source ? { source: e.source } : {};
    const emit = () => winstonLogger!.log({ level: e.level, message: e.message, line: formatLine(e, options, stream), ...meta });
    if (options.around) options.around(emit);
    else emit();
  };

  const log = (level: LogLevel, message: string, source?: string): void => {
    if (rank[level] > rank[options.level] || closed) return;
    if (!winstonLogger) load();
    write({ level, message: mask(message), ...(source ? { source } : {}) });
  };

  return {
    error: (m) => log('error', m),
    warn: (m) => log('warn', m),
    info: (m) => log('info', m),
    debug: (m) => log('debug', m),
    step: (source, line) => log('info', line, source),
    addSecrets: (values) => masker.add(values),
    mask,
    masker,
    isEnabled: (level) => rank[level] <= rank[options.level],
    configure(settings) {
      if (settings.level && !options.levelExplicit) options.level = settings.level;
      if (settings.file && !winstonLogger) {
        if (fileFd !== undefined) closeSync(fileFd);
        fileFd = prepareLogFile(settings.file);
        options.file = settings.file;
      }
    },
    async close() {
      closed = true;
      if (!winstonLogger) return;
      const finished = fileTransport ? new Promise<void>((resolve) => fileTransport!.on('finish', () => resolve())) : Promise.resolve();
      winstonLogger.end();
      await Promise.race([finished, new Promise((r) => setTimeout(r, 2000).unref())]);
      // Then the file's own stream: its last lines written, its descriptor closed.
      if (fileStream) await new Promise<void>((resolve) => fileStream!.end(() => resolve()));
    },
  };
}

/**
 * `[log] file` is made ready when the config is read, before anything runs: its dir is created
 * (0700, as Puppet and Chef create theirs) and the file (0600). One that cannot be opened is
 * refused there (77, 73) naming the key, never found out at a run's first log line.
 */
function prepareLogFile(file: string): number {
  const hint = 'fix [log] file in bootstrap.ini, or its directory';
  const uid = currentUid();
  let fd: number;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // As a state file is judged: its dir trusted (no one else can swap the file), the file itself
    // never a symlink (O_NOFOLLOW) nor a FIFO that would block (O_NONBLOCK, then a regular file only).
    const untrusted = pathTrustProblem(dirname(file), uid);
    if (untrusted) throw new PermissionDeniedError(`refusing [log] file ${file}: ${untrusted.path}: ${untrusted.reason}`, hint);
    fd = openSync(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK, 0o600);
  } catch (err) {
    if (err instanceof PermissionDeniedError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ELOOP' ? 'is a symbolic link (refusing to follow it)' : code === 'ENXIO' ? 'is a FIFO' : describeFsError(err);
    const message = `cannot open [log] file ${file}: ${reason}`;
    throw code === 'EACCES' || code === 'EPERM' ? new PermissionDeniedError(message, hint) : new StateError(message, hint, { cause: err });
  }
  const st = fstatSync(fd);
  const problem = !st.isFile() ? 'not a regular file' : st.uid !== uid && st.uid !== 0 ? `owned by uid ${st.uid}, not root or the user running bootstrap` : null;
  if (problem) {
    closeSync(fd);
    throw new PermissionDeniedError(`refusing [log] file ${file}: ${problem}`, hint);
  }
  return fd;
}

/** A logger that drops everything but still masks (library use without logs). */
export function silentLogger(): Logger {
  const logger = createLogger({ level: 'error' });
  const noop = () => {};
  return { ...logger, error: noop, warn: noop, info: noop, debug: noop, step: noop, isEnabled: () => false };
}
