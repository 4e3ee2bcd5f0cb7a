// The command lines bootstrap.ini names (reboot_command, an exec check's command): split into
// words as a shell would, and refused when they use shell syntax, for they run without a shell.

import { ConfigError } from '../errors.js';

/**
 * Splits a command line like a shell would split words (quotes and backslashes), with no
 * expansion of any kind: what is written is what runs.
 */
export function splitCommand(command: string, where: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length && '"\\'.includes(command[i + 1]!)) word += command[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ConfigError(`[${where}] command: unterminated ${quote} quote`);
  if (inWord) words.push(word);
  const shell = shellSyntax(command);
  if (shell) {
    throw new ConfigError(
      `[${where}] command: '${shell}' is shell syntax, and the command runs without a shell`,
      `write command = sh -c ${JSON.stringify(command)} to run it with one`,
    );
  }
  if (words.length === 0) throw new ConfigError(`[${where}] command: missing`, 'an exec check needs command = PROGRAM ARGS...');
  return words;
}

/**
 * The first unquoted character that only a shell would act on (a pipe, a redirection, `;`, `&`,
 * `$`, a backquote, a glob), or null: such a command would run with that character as a plain
 * argument (`df -P / | tail -1` → df: invalid option).
 */
function shellSyntax(command: string): string | null {
  let quote: string | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"') i++;
      continue;
    }
    if (c === '\\') i++;
    else if (c === '"' || c === "'") quote = c;
    else if ('|&;<>$`*?(){}'.includes(c)) return c;
  }
  return null;
}
