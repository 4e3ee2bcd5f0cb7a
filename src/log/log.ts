// Logging through winston, loaded (synchronously, with require) only when something is logged:
// most quick commands log nothing, and winston costs ~30 ms of start-up. `close()` waits for
// every line to be written (never cut logs with process.exit).
//
// Formats: on a terminal, human lines (colour when stderr is a TTY); under systemd
// (JOURNAL_STREAM), `<N>` syslog priority prefixes, no colour, no timestamp; elsewhere, human
// lines with an ISO timestamp. Optional JSON lines to a file, at its own level (`[log] level`,
// whatever -q/-v do on the console), each line with its context as fields (`server`, `run_id`,
// `phase`, `step`: `child()` adds them). Secret values are masked in every line and field, step
// output included (log/mask.ts), and control characters in the human and journal lines are shown
// escaped (steps print what they like; the operator's terminal must not act on it).

import { closeSync, constants as fsConstants, createWriteStream, fstatSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { currentUid } from '../util/files.js';
import { pathTrustProblem } from '../util/trust.js';
import { dirname } from 'node:path';
import { describeFsError, PermissionDeniedError, StateError } from '../errors.js';
import { loadWinston } from './winston.js';
import type { LogLevel } from '../config/config.js';
import { Masker } from './mask.js';
import { showControls } from '../util/text.js';

export interface LogEntry {
  level: LogLevel;
  message: string;
  /** Set for lines a step printed: `phase/step`. */
  source?: string;
}

/**
 * Context a line carries as fields of the JSON file (the console text never shows them):
 * `server` (from the config), `run_id` (a run's child logger), `phase` and `step` (a step's output).
 */
export interface LogFields {
  server?: string;
  run_id?: string;
  phase?: string;
  step?: string;
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** A line of a step's output, shown as `phase/step | line`; in the file with `phase` and `step` fields. */
  step(source: string, line: string): void;
  /** The same logger (level, file, secrets shared), its file lines carrying `fields` as well. */
  child(fields: LogFields): Logger;
  /** Values to mask from now on (secret settings, the callback secret). */
  addSecrets(values: Iterable<string>): void;
  mask(text: string): string;
  /** The secrets to mask, for text that enters the agent (pipeline/output.ts). */
  readonly masker: Masker;
  /** Whether a line at `level` goes anywhere (the console or the file). */
  isEnabled(level: LogLevel): boolean;
  /**
   * Applies `[log]` of bootstrap.ini: its level for the file, and for the console unless one was
   * given explicitly (-q, -v, --log-level); its file; `server` on every line of the file.
   */
  configure(settings: { level?: LogLevel | undefined; file?: string | undefined; server?: string | undefined }): void;
  close(): Promise<void>;
}

type ConsoleStream = NodeJS.WritableStream & { isTTY?: boolean };

export interface LoggerOptions {
  /** The console's level. */
  level: LogLevel;
  /** The level came from the command line and wins over `[log] level` on the console. */
  levelExplicit?: boolean;
  /** The file's own level (default info), whatever the console's. */
  fileLevel?: LogLevel;
  /**
   * Where human lines go (default: stderr, so stdout stays for results and --json). A function
   * is called at the first line: a command that logs nothing never opens the stream (Node builds
   * process.stderr on first use, ~1 ms of a start).
   */
  stream?: ConsoleStream | (() => ConsoleStream);
  /** systemd: JOURNAL_STREAM is set. */
  journal?: boolean;
  /** A function is asked at each line (so the stream is looked at only when a line is written). */
  color?: boolean | (() => boolean);
  file?: string | undefined;
  /** Called around every console line, e.g. to clear and redraw a progress line. */
  around?: ((write: () => void) => void) | undefined;
}

const priority: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A line as the console shows it: plain (timestamped off a terminal), coloured, or journald's `<N>`. */
function formatLine(entry: LogEntry, options: LoggerOptions, stream: { isTTY?: boolean }): string {
  const e = { ...entry, message: showControls(entry.message, true), ...(entry.source ? { source: showControls(entry.source, true) } : {}) };
  const text = e.source ? `${e.source} | ${e.message}` : e.message;
  if (options.journal) return `<${priority[e.level]}>${text}`;
  const label = e.level === 'info' ? '' : `${e.level}: `;
  if (typeof options.color === 'function' ? options.color() : options.color) {
    const colors: Record<LogLevel, string> = { error: '\x1b[31m', warn: '\x1b[33m', info: '', debug: '\x1b[2m' };
    const c = colors[e.level];
    const src = e.source ? `\x1b[36m${e.source}\x1b[0m | ` : '';
    return `${src}${c}${label}${e.message}${c ? '\x1b[0m' : ''}`;
  }
  return `${stream.isTTY ? '' : `${new Date().toISOString()} `}${label}${text}`;
}

// Carried on winston's info object under symbols, so no JSON line ever shows them.
const CONSOLE_LINE = Symbol('console line');
const FILE_RECORD = Symbol('file record');
const MESSAGE = Symbol.for('message');

/** winston, loaded on the first line logged: the console stream, and the JSON file when there is one. */
function openWinston(stream: NodeJS.WritableStream, fileFd: number | undefined) {
  const winston = loadWinston();
  const { transports, format: wf } = winston;
  // Each sink takes only the lines meant for it: the console and the file have their own levels.
  const pick = (key: symbol) =>
    wf((info) => {
      const text = (info as unknown as Record<symbol, string | undefined>)[key];
      if (text === undefined) return false;
      (info as unknown as Record<symbol, string>)[MESSAGE] = text;
      return info;
    })();
  const list: import('winston').transport[] = [new transports.Stream({ stream, format: pick(CONSOLE_LINE) })];
  let fileTransport: import('winston').transport | null = null;
  let fileStream: WriteStream | null = null;
  if (fileFd !== undefined) {
    // Written through the descriptor that was checked (prepareLogFile), never opened again by
    // name: what was judged is what is written.
    fileStream = createWriteStream('', { fd: fileFd });
    fileTransport = new transports.Stream({ stream: fileStream, format: pick(FILE_RECORD) });
    list.push(fileTransport);
  }
  const logger = winston.createLogger({ level: 'debug', levels: rank, transports: list, exitOnError: false });
  return { logger, fileTransport, fileStream };
}

/** What every logger of one createLogger shares: the sinks, their levels, the secrets. */
interface Core {
  options: LoggerOptions & { fileLevel: LogLevel };
  /** The console stream, opened at the first line written. */
  stream: () => ConsoleStream;
  masker: Masker;
  /** Fields on every file line (`server`, once the config is read). */
  base: LogFields;
  winston: ReturnType<typeof openWinston> | null;
  fileFd: number | undefined;
  closed: boolean;
}

/** The JSON line of the file: time, level, the message, then the context fields, every value masked. */
function fileRecord(core: Core, level: LogLevel, message: string, fields: LogFields, source: string | undefined): string {
  const record: Record<string, string> = { timestamp: new Date().toISOString(), level, message };
  const context: Record<string, string | undefined> = { ...core.base, ...fields, ...(source === undefined ? {} : { source, ...sourceFields(source) }) };
  for (const [key, value] of Object.entries(context)) if (value !== undefined) record[key] = core.masker.mask(value);
  return JSON.stringify(record);
}

/** `configure/10-a` → phase `configure`, step `10-a`; `reboot` → phase `reboot`. */
function sourceFields(source: string): LogFields {
  const slash = source.indexOf('/');
  return slash < 0 ? { phase: source } : { phase: source.slice(0, slash), step: source.slice(slash + 1) };
}

function write(core: Core, level: LogLevel, message: string, fields: LogFields, source?: string): void {
  if (core.closed) return;
  const toConsole = rank[level] <= rank[core.options.level];
  const toFile = core.options.file !== undefined && rank[level] <= rank[core.options.fileLevel];
  if (!toConsole && !toFile) return;
  if (!core.winston) {
    core.fileFd ??= core.options.file ? prepareLogFile(core.options.file) : undefined;
    core.winston = openWinston(core.stream(), core.fileFd);
  }
  const masked = core.masker.mask(message);
  const shownSource = source === undefined ? undefined : core.masker.mask(source);
  const info: Record<string | symbol, unknown> = { level, message: masked };
  if (toConsole) info[CONSOLE_LINE] = formatLine({ level, message: masked, ...(shownSource ? { source: shownSource } : {}) }, core.options, core.stream());
  if (toFile && core.winston.fileTransport) info[FILE_RECORD] = fileRecord(core, level, masked, fields, source);
  const emit = () => core.winston!.logger.log(info as unknown as import('winston').LogEntry);
  if (toConsole && core.options.around) core.options.around(emit);
  else emit();
}

function loggerOn(core: Core, fields: LogFields): Logger {
  return {
    error: (m) => write(core, 'error', m, fields),
    warn: (m) => write(core, 'warn', m, fields),
    info: (m) => write(core, 'info', m, fields),
    debug: (m) => write(core, 'debug', m, fields),
    step: (source, line) => write(core, 'info', line, fields, source),
    child: (more) => loggerOn(core, { ...fields, ...more }),
    addSecrets: (values) => core.masker.add(values),
    mask: (text) => core.masker.mask(text),
    masker: core.masker,
    isEnabled: (level) => rank[level] <= rank[core.options.level] || (core.options.file !== undefined && rank[level] <= rank[core.options.fileLevel]),
    configure: (settings) => configure(core, settings),
    close: () => close(core),
  };
}

function configure(core: Core, settings: Parameters<Logger['configure']>[0]): void {
  if (settings.level) {
    core.options.fileLevel = settings.level;
    if (!core.options.levelExplicit) core.options.level = settings.level;
  }
  if (settings.server !== undefined) core.base = { ...core.base, server: settings.server };
  if (settings.file && !core.winston) {
    if (core.fileFd !== undefined) closeSync(core.fileFd);
    core.fileFd = prepareLogFile(settings.file);
    core.options.file = settings.file;
  }
}

async function close(core: Core): Promise<void> {
  core.closed = true;
  if (!core.winston) return;
  const { logger, fileTransport, fileStream } = core.winston;
  const finished = fileTransport ? new Promise<void>((resolve) => fileTransport.on('finish', () => resolve())) : Promise.resolve();
  logger.end();
  await Promise.race([finished, new Promise((r) => setTimeout(r, 2000).unref())]);
  // Then the file's own stream: its last lines written, its descriptor closed.
  if (fileStream) await new Promise<void>((resolve) => fileStream.end(() => resolve()));
}

export function createLogger(initial: LoggerOptions): Logger {
  const core: Core = {
    options: { ...initial, fileLevel: initial.fileLevel ?? 'info' },
    stream: consoleStream(initial.stream),
    masker: new Masker(),
    base: {},
    winston: null,
    fileFd: undefined,
    closed: false,
  };
  return loggerOn(core, {});
}

/** `stream` as Core keeps it: a function that opens it once, at the first call. */
function consoleStream(stream: LoggerOptions['stream']): () => ConsoleStream {
  let opened: ConsoleStream | undefined;
  return () => (opened ??= typeof stream === 'function' ? stream() : (stream ?? process.stderr));
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
  const silent: Logger = { ...logger, error: noop, warn: noop, info: noop, debug: noop, step: noop, child: () => silent, isEnabled: () => false };
  return silent;
}
