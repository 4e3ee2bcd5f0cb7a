// completion: the bash/zsh completion script, and the words it asks for (`completion --words`).
// It completes the command names and flags, so it is handed the command list (index.ts) rather
// than importing it.

import { UsageError } from '../../errors.js';
import { commandName, globalKeys, positionalNames, type Command, type CommandContext } from '../context.js';

/** The completion command; `commands()` is the command list, in help order (index.ts). */
export function completionCommand(commands: () => readonly Command[]): Command {
  return {
    // `completion [--shell zsh]` is how people call it; the script's own `--words KIND [ARG]` is hidden.
    usage: 'completion',
    describe: 'print a completion script for bash (source it, or save it to /etc/bash_completion.d/bootstrap), or for zsh with --shell zsh',
    examples: [
      ['$0 completion > /etc/bash_completion.d/bootstrap', 'install completion for bash'],
      ['$0 completion --shell zsh > ~/.zfunc/bootstrap.zsh', 'for zsh (through bashcompinit)'],
    ],
    builder: (y) =>
      y
        .option('shell', { type: 'string', choices: ['bash', 'zsh'], describe: 'the shell (default bash)' })
        // KIND [ARG]: products, settings, values PRODUCT.SETTING, heartbeats, modes or flags COMMAND.
        .option('words', { type: 'string', array: true, hidden: true, describe: 'print the words to complete, for the script' }),
    async run(ctx, args) {
      const words = args['words'] as string[] | undefined;
      if (!words) {
        const script = completionScript(commands().map(commandName));
        ctx.io.stdout.write(args['shell'] === 'zsh' ? `# zsh completion for bootstrap: source it from ~/.zshrc\nautoload -U +X bashcompinit && bashcompinit\n${script}` : script);
        return;
      }
      if (words.length > 2) throw new UsageError(`completion --words: unexpected '${words[2]}'`, 'KIND [ARG]');
      ctx.io.stdout.write(`${(await completionWords(ctx, commands(), words[0] ?? 'settings', words[1])).join('\n')}\n`);
    },
  };
}

/** The words `completion --words KIND [ARG]` gives the script: what fits where the cursor is. */
async function completionWords(ctx: CommandContext, commands: readonly Command[], kind: string, arg: string | undefined): Promise<string[]> {
  if (kind === 'flags') {
    // The command's own options, as its builder declares them (positionals are not flags).
    const command = commands.find((c) => commandName(c) === arg);
    const built = command?.builder?.((await import('yargs')).default([])) as unknown as { getOptions(): { key: Record<string, unknown>; hiddenOptions: string[] } } | undefined;
    const opts = built?.getOptions();
    const positional = command ? positionalNames(command) : [];
    const own = opts ? Object.keys(opts.key).filter((k) => k.length > 1 && !positional.includes(k) && !opts.hiddenOptions.includes(k) && !['help', 'version', '$0'].includes(k)) : [];
    return [...own, ...globalKeys, 'help'].map((f) => `--${f}`);
  }
  const config = ctx.agent().config();
  const products = [...config.products.values()];
  switch (kind) {
    case 'products':
      return products.map((p) => p.name);
    case 'settings':
      return products.flatMap((p) => [...p.settings.keys()].map((s) => `${p.name}.${s}`));
    case 'heartbeats':
      return [...config.heartbeats.keys()];
    case 'modes':
      return config.server.modes;
    case 'values': {
      const [product, setting] = (arg ?? '').split('.');
      const type = config.products.get(product ?? '')?.settings.get(setting ?? '')?.type;
      if (type?.kind === 'enum') return type.values;
      if (type?.kind === 'bool') return ['true', 'false'];
      // A bounded int: its bounds, so that TAB TAB shows the range.
      if (type?.kind === 'int') return [type.min, type.max].filter((b) => b !== undefined).map(String);
      return [];
    }
    default:
      throw new UsageError(`completion --words: unknown kind '${kind}'`, 'products, settings, values, heartbeats, modes or flags');
  }
}

function completionScript(names: string[]): string {
  return `# bash completion for bootstrap: source it, or save it as /etc/bash_completion.d/bootstrap
_bootstrap_words() { "\${BOOTSTRAP_COMPLETION_BIN:-bootstrap}" completion --words "$@" 2>/dev/null; }
_bootstrap_complete() {
  local cmd=\${COMP_WORDS[1]} line=\${COMP_LINE:0:$COMP_POINT}
  local word=\${line##*[[:space:]]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names.join(' ')}" -- "$word"))
    return
  fi
  case "$word" in
    -*) COMPREPLY=($(compgen -W "$(_bootstrap_words flags "$cmd")" -- "$word")); return ;;
  esac
  case "$cmd" in
    product.set)
      if [[ "$word" == *=* ]]; then
        # bash splits words at '=': complete the value after it
        COMPREPLY=($(compgen -W "$(_bootstrap_words values "\${word%%=*}")" -- "\${word#*=}"))
      else
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -S = -W "$(_bootstrap_words settings)" -- "$word"))
      fi ;;
    product.get) COMPREPLY=($(compgen -W "$(_bootstrap_words products) $(_bootstrap_words settings)" -- "$word")) ;;
    product.unset) COMPREPLY=($(compgen -W "$(_bootstrap_words settings)" -- "$word")) ;;
    product.upgrade) COMPREPLY=($(compgen -W "$(_bootstrap_words products)" -- "$word")) ;;
    heartbeat.get) COMPREPLY=($(compgen -W "$(_bootstrap_words heartbeats)" -- "$word")) ;;
    server.mode) COMPREPLY=($(compgen -W "$(_bootstrap_words modes)" -- "$word")) ;;
    runs.show|runs.blame) COMPREPLY=($(compgen -W "last" -- "$word")) ;;
  esac
}
complete -o default -F _bootstrap_complete bootstrap
`;
}
