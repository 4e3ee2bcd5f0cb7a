// Facts about the server (cdist's explorers): built-in ones read cheaply from /etc, /proc and
// Node's os module, plus what explorer.d prints. A fact that cannot be read is absent, never an
// error. They go to facts.json (0600, atomic), to steps as BOOTSTRAP_FACTS_JSON and
// BOOTSTRAP_FACT_<NAME> (those that fit the environment's bounds), and into journals and callbacks.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stateFsError } from '../errors.js';
import { writeJsonAtomic } from '../state/atomic.js';
import { currentUid, readBounded } from '../util/files.js';
import { bootId } from '../util/process.js';
import { os } from '../util/lazy.js';
import { runSystemTool } from '../util/system-tool.js';
import { monotonicMs } from '../util/clock.js';

export type Facts = Record<string, unknown>;

export const factsSchema = 1;

export interface FactsDoc {
  schema: number;
  collected_at: string;
  facts: Facts;
  /** Explorers that failed at this collection (their facts are absent). */
  failed: string[];
  /** What the collection cost, in ms: the built-in facts, and explorer.d (in parallel). */
  builtin_ms: number;
  explorers_ms: number;
}

/** Reads a small text file, trimmed; null when it cannot be read or is empty. */
function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** KEY=value lines of os-release(5), quotes removed. */
function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2').replace(/\\(["$`\\])/g, '$1');
  }
  return out;
}

/** The host's dotted name: the host name if it has a dot, else the first dotted alias /etc/hosts gives it. */
function fqdnOf(hostname: string): string | null {
  if (hostname.includes('.')) return hostname;
  const hosts = readText('/etc/hosts');
  for (const line of hosts?.split('\n') ?? []) {
    const names = line.replace(/#.*/, '').trim().split(/\s+/).slice(1);
    if (names.some((n) => n === hostname || n.startsWith(`${hostname}.`))) {
      const dotted = names.find((n) => n.startsWith(`${hostname}.`));
      if (dotted) return dotted;
    }
  }
  return null;
}

function addresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os().networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal) out.push(a.address);
  }
  return out;
}

/**
 * systemd-detect-virt's answer (`none` on bare metal), bounded; null when it is not there. It
 * cannot change within a boot: the caller reuses the last collection's answer from this boot.
 */
async function detectVirt(): Promise<string | null> {
  const { ok, stdout } = await runSystemTool('systemd-detect-virt', []);
  const answer = stdout.trim().split('\n')[0] ?? '';
  // It exits 1 when it finds none, and says so.
  return /^[a-z0-9_-]+$/.test(answer) && (ok || answer === 'none') ? answer : null;
}

/**
 * The built-in facts. `previous`: the last collection, whose `virtualization` is reused within
 * the same boot (finding it costs a process).
 */
async function builtinFacts(previous: FactsDoc | null = null, env: NodeJS.ProcessEnv = process.env): Promise<Facts> {
  const facts: Facts = {};
  const put = (name: string, value: unknown) => {
    if (value !== null && value !== undefined && value !== '') facts[name] = value;
  };
  const system = os();
  const hostname = system.hostname();
  put('hostname', hostname);
  put('fqdn', fqdnOf(hostname));
  const release = parseOsRelease(readText('/etc/os-release') ?? readText('/usr/lib/os-release') ?? '');
  put('os.id', release['ID']);
  put('os.version_id', release['VERSION_ID']);
  put('os.codename', release['VERSION_CODENAME']);
  put('kernel', system.release());
  put('arch', system.machine());
  put('cpus', system.availableParallelism());
  put('memory_mb', Math.round(system.totalmem() / 1024 / 1024));
  const boot = bootId(env);
  put('boot_id', boot);
  put('machine_id', readText('/etc/machine-id'));
  put('addresses', addresses());
  const known = previous && previous.facts['boot_id'] === boot ? previous.facts['virtualization'] : undefined;
  put('virtualization', typeof known === 'string' ? known : await detectVirt());
  return facts;
}

/**
 * What facts may take of steps' environment. Linux refuses to start a program with one string
 * over 128 KiB or all over ~2 MiB (util/env-size), and settings may take 1 MiB of it: one fact
 * exports at most 32 KiB, all of them 256 KiB. A larger fact (a package list) stays in
 * facts.json, journals and callbacks; only its variable is left out, with a warning.
 */
const maxFactEnvBytes = 32 * 1024;
const maxFactsEnvBytes = 256 * 1024;

/**
 * `BOOTSTRAP_FACT_<NAME>` for each scalar fact (upper case, any other character → `_`), within
 * the bounds above; `onSkip` hears of each fact left out, with why.
 */
export function factEnvironment(facts: Facts, onSkip: (message: string) => void = () => {}): Record<string, string> {
  const env: Record<string, string> = {};
  let total = 0;
  for (const [name, value] of Object.entries(facts)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
    const key = `BOOTSTRAP_FACT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
    const text = String(value);
    const bytes = Buffer.byteLength(key) + 1 + Buffer.byteLength(text);
    const over = bytes > maxFactEnvBytes ? `more than the ${maxFactEnvBytes} bytes one fact may take` : total + bytes > maxFactsEnvBytes ? `the facts before it took ${total} of the ${maxFactsEnvBytes} bytes all facts may take` : null;
    if (over) {
      onSkip(`the fact '${name}' is not exported as ${key} (${bytes} bytes; ${over} in steps' environment): steps read it from $BOOTSTRAP_FACTS_JSON`);
      continue;
    }
    total += bytes;
    env[key] = text;
  }
  return env;
}

/** An explorer's output as a fact: a JSON object or array is kept as JSON, anything else as trimmed text. */
export function parseFact(output: string): unknown {
  const text = output.trim();
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      const value: unknown = JSON.parse(text);
      if (value !== null && typeof value === 'object') return value;
    } catch {
      // not JSON after all: text
    }
  }
  return text;
}

export class FactsStore {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, 'facts.json');
  }

  /** The last collection; null when there is none (or it cannot be used: it is collected again). */
  async read(): Promise<FactsDoc | null> {
    try {
      const doc = JSON.parse(await readBounded(this.file, { maxBytes: 16 * 1024 * 1024, noFollow: true, ownedBy: currentUid() })) as FactsDoc;
      return doc && typeof doc === 'object' && doc.facts && typeof doc.facts === 'object' ? doc : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return null;
      throw stateFsError(err, `read ${this.file}`);
    }
  }

  /** Atomic (rename) but not fsynced: facts are collected again by every run. */
  async write(doc: FactsDoc): Promise<void> {
    try {
      await writeJsonAtomic(this.file, doc, 0o600, { durable: false });
    } catch (err) {
      throw stateFsError(err, `write ${this.file}`);
    }
  }
}

/** The built-in facts and what they cost (ms); the last collection gives what cannot change within a boot. */
export async function builtinCollection(store: FactsStore, env: NodeJS.ProcessEnv = process.env): Promise<{ facts: Facts; ms: number }> {
  const t0 = monotonicMs();
  const previous = await store.read().catch(() => null);
  const facts = await builtinFacts(previous, env);
  return { facts, ms: Math.round((monotonicMs() - t0) * 10) / 10 };
}
