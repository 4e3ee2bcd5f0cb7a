// bootstrap-receiver: options, keys, database (migrated), retention, HTTP server; SIGTERM and
// SIGINT stop it cleanly (no new requests, those in flight answered, the database closed).

import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { lenient } from './json-schema.js';
import { Counters } from './metrics.js';
import { parseOptions, usage, UsageError, type ReceiverOptions } from './options.js';
import { startRetention } from './retention.js';
import { callbackPath, createReceiverServer } from './server.js';
import { loadKeys } from './signature.js';
import { openDriver } from './storage/driver.js';
import { migrate } from './storage/migrations.js';
import { Store } from './storage/store.js';

const log = (line: string) => process.stdout.write(`bootstrap-receiver: ${line}\n`);

async function start(o: ReceiverOptions): Promise<() => Promise<void>> {
  // The database and the key it may create are the receiver's alone (the fleet's facts and failures).
  process.umask(0o077);
  const keys = loadKeys(o.secretFile, o.secretsDir, o.initSecret);
  const schema = lenient(JSON.parse(readFileSync(new URL('../../../schema/callback.schema.json', import.meta.url), 'utf8')));
  const db = await openDriver(o.db);
  const applied = await migrate(db);
  log(`database ${db.shown}${applied.length > 0 ? `: applied migrations ${applied.join(', ')}` : ''}`);
  const store = new Store(db);
  const counters = new Counters();
  const stopRetention = o.retainMs === null ? async () => {} : startRetention(store, o.retainMs, o.pruneIntervalMs, counters, log);
  const server = createReceiverServer({
    keys, schema, store, counters, maxBodyBytes: o.maxBodyBytes, retainMs: o.retainMs, unresponsiveAfterMs: o.unresponsiveAfterMs, requestTimeoutMs: o.requestTimeoutMs, log, quiet: o.quiet,
    stallAfterStore: process.env['BOOTSTRAP_RECEIVER_TEST_STALL_AFTER_STORE'] === '1',
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, resolve);
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  log(`listening on http://${host}:${a.port} (callbacks: POST http://${host}:${a.port}${callbackPath}; fleet: http://${host}:${a.port}/)`);
  if (o.initSecret && o.secretFile) log(`the agents' [callback] secret_file: a copy of ${o.secretFile}`);
  return async () => {
    await stopRetention();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await db.close();
  };
}

export async function main(argv: string[]): Promise<number> {
  let o;
  try {
    o = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bootstrap-receiver: ${err.message}\n${usage}\n`);
    return 64;
  }
  if (o.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  let stop: () => Promise<void>;
  try {
    stop = await start(o);
  } catch (err) {
    process.stderr.write(`bootstrap-receiver: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  // `on`, not `once`: Ctrl-C reaches both the launcher and this process, and the launcher passes
  // it on; a second signal must not cut the clean stop short.
  const signal = await new Promise<string>((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });
  log(`${signal}: stopping`);
  await stop();
  return 0;
}
