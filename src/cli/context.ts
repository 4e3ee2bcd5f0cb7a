// What a command is and what it is handed: the declarative `Command` (usage, flags, examples,
// run) and its name, the `CommandContext` cli.ts builds for its run, `CliIo` (the streams and
// environment of one invocation) and the global option names. cli.ts and the command files both
// import this file; commands/ never imports cli.ts.

import type { Argv } from 'yargs';
import type { Agent } from '../agent.js';
import type { Logger } from '../log/log.js';
import { globalOptionSpecs } from './argv.js';
import type { Output } from './stdout.js';

export interface CliIo {
  stdin?: NodeJS.ReadableStream;
  /** Written to, never listened to: a stream, or this process's fd 1 (./stdout.ts). */
  stdout: Output;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Standard output could not be written (a reader that left is no failure): exit 73, not 0. */
  outputFailed?: () => boolean;
}

export interface CommandContext {
  json: boolean;
  quiet: boolean;
  io: CliIo;
  logger: Logger;
  exitCode: number;
  agent(): Agent;
  /** Progress of a run on a terminal (undefined: none). */
  progress?: ((event: { phase: string; step: string; index: number; total: number }) => void) | undefined;
  endProgress?: () => void;
  /**
   * Prints `human` on stdout (`brief` instead under -q, when given), control characters shown
   * escaped unless `verbatim`; or `data` as JSON with --json.
   */
  print(human: string, data: unknown, brief?: string, how?: { verbatim?: boolean }): void;
}

export interface Command {
  /** The command word, then its positionals: `product.set <pairs..>`, `runs.show [id]`. */
  usage: string;
  describe: string;
  examples: [string, string][];
  builder?: (y: Argv) => Argv;
  run(ctx: CommandContext, args: Record<string, unknown>): Promise<void>;
}

/** The global options (argv.ts declares them), in the order help and completion list them. */
export const globalKeys = Object.keys(globalOptionSpecs);

/** The command's word (`product.set`): the first word of its usage. */
export function commandName(command: Pick<Command, 'usage'>): string {
  return command.usage.split(' ')[0]!;
}

/** The command's positionals (`pairs` of `product.set <pairs..>`): arguments, never flags in help or completion. */
export function positionalNames(command: Pick<Command, 'usage'>): string[] {
  return [...command.usage.matchAll(/[<[](\w+)/g)].map((m) => m[1]!);
}
