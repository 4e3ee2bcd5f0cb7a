// The receiver's command line, normalised once: every default is set here, every flag checked
// here, so the rest of the receiver gets numbers in ms and bytes, never text.

import { parseArgs } from 'node:util';

export interface ReceiverOptions {
  host: string;
  port: number;
  /** `sqlite:PATH` or `postgres://…` / `postgresql://…`. */
  db: string;
  secretFile: string | null;
  secretsDir: string | null;
  /** Create --secret-file with a random key when it does not exist (npm run receiver). */
  initSecret: boolean;
  /** Run history older than this is pruned; null: kept for ever. */
  retainMs: number | null;
  pruneIntervalMs: number;
  unresponsiveAfterMs: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  quiet: boolean;
}

export class UsageError extends Error {
  readonly exitCode = 64;
}

export const usage = `usage: bootstrap-receiver [--listen HOST:PORT] [--db sqlite:PATH|postgres://URL]
         [--secret-file FILE [--init-secret]] [--secrets-dir DIR] [--retain DAYS [--prune-interval DURATION]]
         [--unresponsive-after DURATION] [--max-body BYTES] [--request-timeout DURATION] [--quiet]`;

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `90s`, `15m`, `1h`, `2d`, `0.5d` (a bare number is in `bareUnit`) → ms. */
export function parseDuration(text: string, flag: string, bareUnit: keyof typeof units = 's'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a duration (e.g. 90s, 15m, 1h, 2d)`);
  const ms = Number(m[1]) * units[m[2] ?? bareUnit]!;
  if (!(ms > 0)) throw new UsageError(`${flag}: must be more than 0`);
  return Math.round(ms);
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--listen: ${JSON.stringify(text)} is not HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseBytes(text: string): number {
  const m = /^(\d+)(k|ki|kib|m|mi|mib)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--max-body: ${JSON.stringify(text)} is not a size (e.g. 1048576, 512KiB, 1MiB)`);
  const unit = (m[2] ?? '').toLowerCase();
  const n = Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
  if (n < 1024) throw new UsageError('--max-body: at least 1024 bytes (a callback is rarely under 1 KiB)');
  return n;
}

function parseDb(text: string): string {
  if (/^sqlite:.+/.test(text) || /^postgres(ql)?:\/\//.test(text)) return text;
  throw new UsageError(`--db: ${JSON.stringify(text.replace(/\/\/[^@/]*@/, '//…@'))} is neither sqlite:PATH nor postgres://…`);
}

export function parseOptions(argv: string[]): ReceiverOptions & { help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        listen: { type: 'string', default: '127.0.0.1:8740' },
        db: { type: 'string', default: 'sqlite:receiver-data/receiver.db' },
        'secret-file': { type: 'string' },
        'secrets-dir': { type: 'string' },
        'init-secret': { type: 'boolean', default: false },
        retain: { type: 'string' },
        'prune-interval': { type: 'string', default: '60s' },
        'unresponsive-after': { type: 'string', default: '1h' },
        'max-body': { type: 'string', default: '1MiB' },
        'request-timeout': { type: 'string', default: '10s' },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const secretFile = values['secret-file'] ?? null;
  const secretsDir = values['secrets-dir'] ?? null;
  if (!values.help && secretFile === null && secretsDir === null) {
    throw new UsageError('no secret: give --secret-file FILE (one key for the fleet) and/or --secrets-dir DIR (a file per server name); every callback must be signed');
  }
  if (values['init-secret'] && secretFile === null) throw new UsageError('--init-secret needs --secret-file');
  return {
    help: values.help,
    ...parseListen(values.listen),
    db: parseDb(values.db),
    secretFile,
    secretsDir,
    initSecret: values['init-secret'],
    retainMs: values.retain === undefined ? null : parseDuration(values.retain, '--retain', 'd'),
    pruneIntervalMs: parseDuration(values['prune-interval'], '--prune-interval'),
    unresponsiveAfterMs: parseDuration(values['unresponsive-after'], '--unresponsive-after'),
    maxBodyBytes: parseBytes(values['max-body']),
    requestTimeoutMs: parseDuration(values['request-timeout'], '--request-timeout'),
    quiet: values.quiet,
  };
}
