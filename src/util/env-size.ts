// What Linux lets a program start with: execve fails with E2BIG when one argument or environment
// string (`NAME=value`) is over MAX_ARG_STRLEN (32 pages: 128 KiB), or when all of them, with a
// pointer each, are over a quarter of the stack rlimit (2 MiB with the usual 8 MiB). Values are
// bounded where they are produced (settings, facts, environment.d); this is the last net before
// a spawn, so that an oversized environment is a clear error naming its largest variables, never
// a bare `spawn E2BIG`.

import { readFileSync } from 'node:fs';

/** Largest `NAME=value` (with its NUL) execve takes. */
const maxEnvStringBytes = 128 * 1024;

/** The bytes one `NAME=value` takes on the new program's stack: the string, its NUL, its pointer. */
function envEntryBytes(name: string, value: string): number {
  return Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 1 + 8;
}

/** What argv and the environment together may take: a quarter of the stack rlimit, at least 128 KiB (as the kernel counts). */
function argMaxBytes(): number {
  try {
    const m = /^Max stack size\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Math.max(128 * 1024, Math.floor(Number(m[1]) / 4));
    if (m) return 6 * 1024 * 1024; // unlimited: the kernel caps it at 3/4 of _STK_LIM (8 MiB)
  } catch {
    // no /proc: assume the usual 8 MiB stack
  }
  return 2 * 1024 * 1024;
}

/** Why `argv` with `env` cannot be started (one line), or null; `headroomBytes` are kept for what the program adds for its own children. */
export function spawnSizeProblem(argv: string[], env: NodeJS.ProcessEnv, headroomBytes = 0): string | null {
  let total = headroomBytes;
  const sizes: [string, number][] = [];
  for (const a of argv) total += Buffer.byteLength(a) + 1 + 8;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const bytes = envEntryBytes(name, value);
    total += bytes;
    sizes.push([name, bytes]);
    if (bytes - 8 > maxEnvStringBytes) return `the environment variable ${name} is ${bytes - 8} bytes, more than the ${maxEnvStringBytes} one variable may take`;
  }
  const limit = argMaxBytes();
  if (total <= limit) return null;
  const largest = sizes.sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, b]) => `${n} ${b} bytes`).join(', ');
  return `the environment takes ${total} bytes, more than the ${limit} a program may start with (largest: ${largest})`;
}
