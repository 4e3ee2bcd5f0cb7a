// The command line without yargs, for the plain lines that make up nearly every run (a timer's
// `server.refresh -q`, a probe's `product.get --json`): building a yargs instance and its parser
// costs a start ~3 ms, a sixth of what the CLI adds to Node's own start. Anything this reader is
// not sure of (an unknown or repeated flag, a flag's value that looks like a flag, `--`, a
// number-like word, an option spec it does not know) is left to yargs, which parses it and says
// what is wrong exactly as before: this only ever gives what yargs would give, or nothing.
// test/unit/cli/argv.test.ts compares the two over every command.

import type { Argv } from 'yargs';
import { logLevels } from '../config/config.js';

/** An option as a builder declares it: the part of yargs' spec this reader understands. */
export interface OptionSpec {
  type?: 'string' | 'boolean' | 'number';
  alias?: string;
  choices?: readonly string[];
  describe?: string;
  global?: boolean;
}

/** The global options, declared once for both readers (cli.ts hands them to yargs). */
export const globalOptionSpecs: Readonly<Record<string, OptionSpec>> = {
  config: { type: 'string', describe: 'static config (default /etc/bootstrap/bootstrap.ini; env BOOTSTRAP_CONFIG)', global: true },
  'state-dir': { type: 'string', describe: 'state dir (default /var/bootstrap; env BOOTSTRAP_STATE_DIR)', global: true },
  'phases-dir': { type: 'string', describe: 'phases base dir (default /etc/bootstrap/phases; env BOOTSTRAP_PHASES_DIR)', global: true },
  json: { type: 'boolean', describe: 'machine output on stdout, errors too', global: true },
  'log-level': { type: 'string', choices: logLevels, describe: 'error, warn, info or debug', global: true },
  quiet: { alias: 'q', type: 'boolean', describe: 'errors, warnings and the one-line result only', global: true },
  verbose: { alias: 'v', type: 'boolean', describe: 'also what the agent decides and why (debug)', global: true },
};

/** Spec keys with a meaning this reader reproduces; any other (array, default, coerce …) means "ask yargs". */
const understood = new Set(['type', 'alias', 'choices', 'describe', 'global', 'hidden']);

/**
 * The options a command's builder declares, read by handing it a recorder in place of yargs;
 * undefined when it asks for anything else of yargs (or declares an option this reader does not
 * understand), so that command is always parsed by yargs.
 */
export function declaredOptions(builder: ((y: Argv) => Argv) | undefined): Map<string, OptionSpec> | undefined {
  const found = new Map<string, OptionSpec>(Object.entries(globalOptionSpecs));
  let plain = true;
  const recorder = {
    option(key: string, spec: Record<string, unknown>) {
      if (Object.keys(spec).some((k) => !understood.has(k)) || found.has(key)) plain = false;
      found.set(key, spec as OptionSpec);
      return recorder;
    },
    options(specs: Record<string, Record<string, unknown>>) {
      for (const [key, spec] of Object.entries(specs)) recorder.option(key, spec);
      return recorder;
    },
    // Outside a yargs command a positional declares nothing (cli.ts maps positionals itself).
    positional: () => recorder,
  };
  try {
    builder?.(recorder as unknown as Argv);
  } catch {
    return undefined;
  }
  return plain ? found : undefined;
}

/** A word yargs would turn into a number (`1e3` → 1000, `0x10` → 16) or read as a flag. */
const unplainWord = /^(-|\.\d|\d|0x)/i;

/**
 * `argv` (after cli.ts's normalisation) as yargs gives it (`_`, `$0`, each option under its name
 * and its alias), or undefined: yargs must read this line.
 */
export function parsePlain(argv: readonly string[], options: ReadonlyMap<string, OptionSpec>): Record<string, unknown> | undefined {
  const byAlias = new Map([...options].filter(([, s]) => s.alias !== undefined).map(([k, s]) => [s.alias!, k]));
  const words: string[] = [];
  const args: Record<string, unknown> = { _: words, $0: 'bootstrap' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      if (unplainWord.test(a)) return undefined;
      words.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = a.startsWith('--') ? a.slice(2, eq < 0 ? undefined : eq) : byAlias.get(a.slice(1));
    const spec = key === undefined ? undefined : options.get(key);
    if (!spec || Object.hasOwn(args, key!)) return undefined;
    let value: unknown;
    if (spec.type === 'boolean') {
      // yargs takes `--json false` as a value, and reads `--json=…` its own way.
      if (eq >= 0 || argv[i + 1] === 'true' || argv[i + 1] === 'false') return undefined;
      value = true;
    } else {
      const text = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      value = readValue(spec, text);
      if (value === undefined) return undefined;
    }
    args[key!] = value;
    if (spec.alias !== undefined) args[spec.alias] = value;
  }
  return args;
}

/**
 * A string or number option's value as yargs reads it, or undefined when yargs must decide: a
 * value that starts like a flag, or with a quote (yargs takes `--label="x"` as `x`).
 */
function readValue(spec: OptionSpec, text: string | undefined): unknown {
  if (text === undefined || /^[-"']/.test(text)) return undefined;
  if (spec.choices && !spec.choices.includes(text)) return undefined;
  if (spec.type === 'number') return /^\d+(\.\d+)?$/.test(text) ? Number(text) : undefined;
  return spec.type === 'string' ? text : undefined;
}
