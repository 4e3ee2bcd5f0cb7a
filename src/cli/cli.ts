// argv → command → exit code. Parses the command line (yargs), builds the command's context (its
// Agent, logger, printer; context.ts) and runs it; the commands themselves are in commands/. The
// only catch: every error ends here as one message (or --json error object) and its exit code.

import type { Argv } from 'yargs';
import { Agent } from '../agent.js';
import { redactUrl, type LogLevel } from '../config/config.js';
import { ExitCode, UsageError, oneLine, toBootstrapError } from '../errors.js';
import { showControls } from '../util/text.js';
import { createLogger, type Logger } from '../log/log.js';
import { readVersion } from '../version.js';
import { commands } from './commands/index.js';
import { commandName, globalKeys, positionalNames, type CliIo, type Command, type CommandContext } from './context.js';
import { closest, describeChoices } from '../util/suggest.js';
import { Progress } from './progress.js';
import { FdOutput, plainOutput, type Output } from './stdout.js';
import { withSchema } from './json.js';
import { declaredOptions, globalOptionSpecs, parsePlain } from './argv.js';

interface GlobalArgs {
  config?: string;
  'state-dir'?: string;
  'phases-dir'?: string;
  json?: boolean;
  'log-level'?: string;
  quiet?: boolean;
  verbose?: boolean;
}

/** Runs one command line; resolves to the exit code. Never calls process.exit. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const code = await dispatch(argv, io);
  // Standard output failed (not a reader that left): what a script reads is incomplete.
  return code === ExitCode.ok && io.outputFailed?.() ? ExitCode.cantWrite : code;
}

/** Parses, runs the command, says what failed: the exit code. */
async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  let exitCode: number = ExitCode.ok;
  let logger: Logger | undefined;
  try {
    // yargs parses and validates; we dispatch. (A yargs handler would make yargs render the
    // whole help text on every run, ~15 ms of start-up.)
    const first = firstWord(argv);
    if (first !== undefined && !commandNames.includes(first)) throw new UsageError(`unknown command '${first}'`, describeChoices(first, commandNames).replace(/^known/, 'commands'));
    const command = commands.find((c) => commandName(c) === first);
    if (json && argv.includes('--version') && !argv.some((a) => a === '--help' || a === '-h')) {
      io.stdout.write(`${JSON.stringify(withSchema({ version: readVersion() }))}\n`);
      return ExitCode.ok;
    }
    const wantsHelp = argv.some((a) => a === '--help' || a === '-h' || a === '--version');
    if (!command || wantsHelp) {
      // Help, version, or no command: the full parser with every command (slower, interactive use).
      await buildParser(await loadYargs(), normaliseArgv(argv), io).parseAsync();
      return ExitCode.ok;
    }
    const args = await parseCommand(command, normaliseArgv(argv), io);
    // Standard error is looked at last: a --json or -q command that logs nothing never opens it.
    const progress = new Progress(io, !io.env['JOURNAL_STREAM'] && !args.quiet && !args.json && !io.env['NO_PROGRESS'] && Boolean(io.stderr.isTTY));
    logger = makeLogger(args, io, progress);
    const context = makeContext(args, io, logger, argv, progress);
    await command.run(context, args);
    exitCode = context.exitCode;
  } catch (err) {
    const error = toBootstrapError(err);
    exitCode = error.exitCode;
    const message = logger ? logger.mask(error.describe()) : error.describe();
    if (json) io.stdout.write(`${jsonText(withSchema({ error: { code: error.exitCode, message } }))}\n`);
    else io.stderr.write(`bootstrap: ${message}\n`);
    if (error.exitCode === ExitCode.internal && error.cause instanceof Error && io.env['BOOTSTRAP_DEBUG']) io.stderr.write(`${error.cause.stack}\n`);
  } finally {
    await logger?.close();
  }
  return exitCode;
}

/**
 * This process's streams, each opened when first used: Node builds process.stdin, stdout and
 * stderr on first use, ~5 ms on Node 24 for stdin (read only by product.set --stdin), ~1 ms each
 * for the others (a `product.get --json` that succeeds never writes to stderr). Standard output
 * is written with writeSync unless it is a terminal (./stdout.ts): Node's stream loads its modules.
 */
function processIo(): CliIo {
  let stdout: Output | undefined;
  return {
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return (stdout ??= plainOutput(1) ? new FdOutput(1, () => process.stdout, (message) => process.stderr.write(message)) : process.stdout);
    },
    outputFailed: () => stdout instanceof FdOutput && stdout.failed,
    get stderr() {
      return process.stderr;
    },
    env: process.env,
  };
}

const commandNames = commands.map(commandName);
const optionsWithValue = new Set(['--config', '--state-dir', '--phases-dir', '--log-level']);

/** The command word: the first argument that is neither an option nor an option's value. */
function firstWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (optionsWithValue.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** `server.provision --products a …`: the command word first, then the rest as given. */
function commandLine(argv: string[]): string {
  const redacted = redactArgv(argv);
  const word = firstWord(argv);
  const at = word === undefined ? -1 : argv.indexOf(word);
  return (at < 0 ? redacted : [redacted[at]!, ...redacted.filter((_, i) => i !== at)]).join(' ');
}

/**
 * The command line as recorded in the lock, journals and "already running" errors (so in
 * journald): raw argv never is. Every value that could be a secret is masked: each
 * `product.set` value (`haproxy.maxconn=…`), a callback URL's userinfo and query. Each flag has
 * one spelling (camel-case expansion is off), so no alias slips past.
 */
function redactArgv(argv: string[]): string[] {
  const setting = firstWord(argv) === 'product.set';
  let positional = false;
  return argv.map((a, i) => {
    if (a.startsWith('--callback-url=')) return `--callback-url=${redactUrl(a.slice('--callback-url='.length))}`;
    if (argv[i - 1] === '--callback-url') return redactUrl(a);
    if (a === '--') positional = true;
    if (setting && (positional || !a.startsWith('-')) && a.includes('=')) return `${a.slice(0, a.indexOf('='))}=…`;
    return oneLine(a);
  });
}

/** `--wait` takes an optional value only as `--wait=S`: a bare `--wait` must not eat the next word. */
function normaliseArgv(argv: string[]): string[] {
  return argv.map((a) => (a === '--wait' ? '--wait=' : a));
}

/**
 * Parses the arguments of one known command. yargs checks the options; we map the positionals
 * from the usage string. (Running a yargs command handler would make yargs render the whole help
 * text on every run, ~15 ms of start-up on a command that runs every few minutes.)
 */
async function parseCommand(command: Command, argv: string[], io: CliIo): Promise<Record<string, unknown> & GlobalArgs> {
  const options = declaredOptions(command.builder);
  const args = (options && parsePlain(argv, options)) ?? (await parseWithYargs(command, argv, io));
  const name = commandName(command);
  const words = (args['_'] as unknown[]).slice(1).map(String);
  for (const spec of command.usage.split(' ').slice(1)) {
    const m = /^([<[])(\w+)(\.\.)?[>\]]$/.exec(spec)!;
    const [required, key, variadic] = [m[1] === '<', m[2]!, Boolean(m[3])];
    if (required && words.length === 0) throw new UsageError(`${name} needs ${spec}`, `see bootstrap ${name} --help`);
    args[key] = variadic ? words.splice(0) : words.shift();
  }
  if (words.length > 0) throw new UsageError(`unexpected argument '${words[0]}'`, `see bootstrap ${name} --help`);
  return args;
}

/** What yargs makes of `argv` for `command` (also the reference argv.ts is tested against). */
export async function parseWithYargs(command: Command, argv: string[], io: CliIo): Promise<Record<string, unknown> & GlobalArgs> {
  // yargs' own keys are no flags: `--_ x` would replace the list of words (a crash, 70); nor is
  // `__proto__`, which yargs-parser renames (it said `unknown flag --___proto___`).
  const own = argv.find((a) => /^-+(_|\$0|__proto__)(=|$)/.test(a));
  if (own !== undefined) throw new UsageError(`unknown flag ${oneLine(own.replace(/=.*/s, ''))}`, `see bootstrap ${commandName(command)} --help`);
  const base = globalOptions((await loadYargs())(argv), io).strictOptions();
  const y = command.builder ? command.builder(base) : base;
  try {
    return (await y.parseAsync()) as Record<string, unknown> & GlobalArgs;
  } catch (err) {
    throw unknownFlag(err, commandName(command), Object.keys((y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key));
  }
}

/** yargs, loaded (its modules initialised) only when a command line needs it: help, or a line argv.ts leaves to it. */
async function loadYargs(): Promise<typeof import('yargs').default> {
  return (await import('yargs')).default;
}

/** yargs' "Unknown argument: dry-rn" as `unknown flag --dry-rn (did you mean --dry-run? …)`. */
function unknownFlag(err: unknown, command: string, known: string[]): unknown {
  const m = /^Unknown arguments?: (.+)$/.exec(err instanceof Error ? err.message : '');
  if (!m) return err;
  const first = m[1]!.split(', ')[0]!;
  const flags = known.filter((k) => k.length > 1 && !['help', 'version', '$0', '_'].includes(k));
  const guess = closest(first, flags);
  const shown = `${first.length > 1 ? '--' : '-'}${first}`;
  return new UsageError(`unknown flag ${shown}${m[1]!.includes(', ') ? ` (and ${m[1]!.split(', ').length - 1} more)` : ''}`, `${guess ? `did you mean --${guess}? ` : ''}see bootstrap ${command} --help`);
}

function buildParser(yargs: typeof import('yargs').default, argv: string[], io: CliIo): Argv {
  let y = globalOptions(yargs(argv), io)
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .version(readVersion())
    .help()
    .alias('help', 'h')
    .epilog('Exit codes: 0 ok, 1 run failed or unhealthy, 64 usage, 65 bad data, 66 no config, 70 bug, 73 state dir, 75 locked, 77 permission, 78 bad config.');
  for (const command of commands) {
    y = y.command(command.usage, command.describe, (b: Argv) => {
      const built = command.builder ? command.builder(b) : b;
      // The command's own options first, then the global ones.
      // Positionals are arguments (listed under Positionals), not `--pairs` flags.
      const skip = [...globalKeys, ...positionalNames(command), 'help', 'version', 'q', 'v', 'h', '$0', '_'];
      const own = Object.keys((built as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key).filter((k) => !skip.includes(k));
      const grouped = own.length ? built.group(own, `${commandName(command)} options:`) : built;
      return grouped.group([...globalKeys, 'help', 'version'], 'Global options:').epilog(examplesText(command.examples));
    });
  }
  return y;
}

/**
 * Examples as lines of their own, each command whole on one line and its meaning below it:
 * yargs' own example table wraps long commands, and the first half pasted alone runs for real.
 */
function examplesText(examples: [string, string][]): string {
  return ['Examples:', ...examples.flatMap(([cmd, what]) => [`  ${cmd.replace('$0', 'bootstrap')}`, `      ${what}`])].join('\n');
}

function globalOptions(y: Argv, io: CliIo): Argv {
  return y
    .scriptName('bootstrap')
    // One spelling per flag: without camel-case expansion `--callbackUrl` is an unknown flag (64),
    // not a second way in that skips the redaction of --callback-url.
    .parserConfiguration({ 'dot-notation': false, 'boolean-negation': false, 'duplicate-arguments-array': false, 'camel-case-expansion': false })
    .usage('$0 COMMAND [options]\n\nBrings this server to the state its configuration describes, in ordered, testable, reversible steps.')
    .options(globalOptionSpecs)
    .exitProcess(false)
    .version(false)
    .help(false)
    .wrap(Math.min(110, io.stdout.isTTY ? ((io.stdout as { columns?: number }).columns ?? 100) : 100))
    .fail((message, err) => {
      if (err) throw err;
      throw new UsageError((message ?? 'bad command line').replace(/\s*\n\s*/g, '; '));
    });
}

/**
 * JSON for stdout. JSON.stringify escapes C0 control characters but not DEL and C1 (U+0080 to
 * U+009F, which some terminals act on): those are escaped too, `\u009b`; the data is the same.
 */
function jsonText(data: unknown, indent?: number): string {
  return String(JSON.stringify(data, null, indent)).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function makeLogger(args: GlobalArgs, io: CliIo, progress: Progress): Logger {
  const explicit: LogLevel | undefined = args.verbose ? 'debug' : args.quiet ? 'warn' : (args['log-level'] as LogLevel | undefined);
  const journal = Boolean(io.env['JOURNAL_STREAM']);
  return createLogger({
    level: explicit ?? 'info',
    levelExplicit: explicit !== undefined,
    stream: () => io.stderr,
    journal,
    color: () => !journal && !io.env['NO_COLOR'] && Boolean(io.stderr.isTTY),
    around: progress.enabled ? (write) => progress.around(write) : undefined,
  });
}

function makeContext(args: GlobalArgs, io: CliIo, logger: Logger, argv: string[], progress: Progress): CommandContext {
  let agent: Agent | undefined;
  return {
    progress: progress.enabled ? (event) => progress.update(event) : undefined,
    endProgress: () => progress.stop(),
    json: Boolean(args.json),
    quiet: Boolean(args.quiet),
    io,
    logger,
    exitCode: ExitCode.ok,
    agent() {
      agent ??= new Agent({
        config: args.config,
        stateDir: args['state-dir'],
        phasesDir: args['phases-dir'],
        env: io.env,
        logger,
        // Recorded in the lock and journals, and named in "… is already running".
        commandLine: commandLine(argv),
      });
      return agent;
    },
    print(human: string, data: unknown, brief?: string, how?: { verbatim?: boolean }) {
      // Human output shows what steps and explorers wrote (reasons, changes, output, facts): its
      // control characters are shown escaped, never acted on by the terminal.
      const text = how?.verbatim ? human : showControls(args.quiet && brief !== undefined ? brief : human, true);
      if (args.json) io.stdout.write(`${jsonText(withSchema(data), 2)}\n`);
      else if (text !== '') io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}

