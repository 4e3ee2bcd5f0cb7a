// Writes bootstrap(8) in roff to stdout, from the CLI's own help: `bootstrap --help`, then each
// command's `--help`, so the man page can never disagree with the CLI it ships with.
// Usage: node scripts/deb/manpage.mjs VERSION DATE (run from the repository root, after a build).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const [version, date] = process.argv.slice(2);
const help = (args) => execFileSync(process.execPath, [join(root, 'bin/bootstrap'), ...args, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80', NO_COLOR: '1' } });

/** Text as roff: backslashes and minus signs escaped, no line starting as a request. */
const roff = (text) => text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1');
/** A block of help output, kept as laid out. */
const pre = (text) => `.nf\n${roff(text.trimEnd())}\n.fi\n`;

/** bootstrap-detach(8) is this page too: its usage, from the header comment of lib/bootstrap-detach. */
function detach() {
  const lines = readFileSync(join(root, 'lib/bootstrap-detach'), 'utf8').split('\n').slice(1);
  return lines.slice(0, lines.findIndex((l) => !l.startsWith('#'))).map((l) => l.replace(/^# ?/, '')).join('\n');
}

const top = help([]);
const commands = [...top.matchAll(/^ {2}bootstrap ([a-z]+\.[a-z]+)/gm)].map((m) => m[1]);
const out = [
  `.TH BOOTSTRAP 8 "${date}" "bootstrap-agent ${version}" "System Administration"`,
  '.SH NAME',
  'bootstrap, bootstrap\\-detach \\- per\\-server agent: brings this server to the state its configuration describes',
  '.SH SYNOPSIS',
  '.B bootstrap',
  '.I COMMAND',
  '[\\fIoptions\\fR]',
  '.SH DESCRIPTION',
  'It runs phase directories of scripts (pre\\-configure.d, configure.d, post\\-configure.d,',
  'migration.d; error.d on failure) under a run lock, keeps static configuration in',
  '.I /etc/bootstrap/bootstrap.ini',
  'and state in',
  '.IR /var/bootstrap ,',
  'and reports every run to a callback URL.',
  '.PP',
  pre(top),
  '.SH COMMANDS',
  ...commands.map((c) => `.SS ${c}\n${pre(help([c]))}`),
  '.SH BOOTSTRAP\\-DETACH',
  pre(detach()),
  '.SH FILES',
  '.TP',
  '.I /etc/bootstrap/bootstrap.ini',
  'The configuration; an example is in',
  '.IR /usr/share/bootstrap\\-agent/examples/ .',
  '.TP',
  '.I /var/bootstrap',
  'State: state.json, run journals, the callback outbox.',
  '.TP',
  '.I /usr/lib/systemd/system/bootstrap\\-*.{service,timer}',
  'The units, installed but not enabled.',
  '.SH SEE ALSO',
  '.BR systemctl (1),',
  '.BR logrotate (8);',
  'the documentation in the project\'s docs/ folder.',
];
process.stdout.write(`${out.join('\n').replace(/\n+$/, '')}\n`);
