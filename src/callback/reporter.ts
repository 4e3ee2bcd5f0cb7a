// The callback reporter: where callbacks go (--callback-url, else [callback] url), writing them to
// the outbox (held until released, when a run records its outcome), and delivering what waits
// within [callback] timeout. What a run calls here (queue, hold, release, deliver, report) never
// throws: a run's exit code never depends on callbacks; `target` refuses a bad --callback-url
// before a run starts. The outbox is outbox.ts; signing and delivery are deliver.ts.

import { redactUrl, type CallbackConfig } from '../config/config.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log/log.js';
import { flushOutbox, type FlushReport } from './deliver.js';
import { Outbox } from './outbox.js';
import type { CallbackBody } from './payload.js';

export interface CallbackTarget {
  url: string;
  source: 'flag' | 'config';
}

export interface QueueOptions {
  /** Not delivered until `release`. */
  held?: boolean;
  /** X-Bootstrap-Delivery (default: the body's id). */
  deliveryId?: string;
}

export interface FlushRequest {
  budgetMs?: number;
  lockWaitMs?: number;
  requeueDead?: boolean;
}

export class CallbackReporter {
  constructor(private readonly o: { stateDir: string; config: () => CallbackConfig; log: Logger }) {}

  /** The same reporter, logging to `log` (a run's child logger: its lines carry the run id). */
  withLog(log: Logger): CallbackReporter {
    return new CallbackReporter({ ...this.o, log });
  }

  /** Where callbacks go: --callback-url, else [callback] url; null when neither is set. */
  target(override?: string): CallbackTarget | null {
    if (override) {
      if (!/^https?:\/\//.test(override) || !URL.canParse(override)) throw new UsageError(`--callback-url: '${redactUrl(override)}' is not an http(s) URL`);
      return { url: override, source: 'flag' };
    }
    const url = this.o.config().url;
    return url ? { url, source: 'config' } : null;
  }

  /**
   * Writes a callback to the outbox (before any attempt); nothing (null) when no URL is
   * configured. Returns its file. Throws (a bad --callback-url, an outbox that cannot be written).
   */
  async queueOrThrow(body: CallbackBody, override?: string, options: QueueOptions = {}): Promise<string | null> {
    const target = this.target(override);
    if (!target) return null;
    return new Outbox(this.o.stateDir).add(
      {
        // X-Bootstrap-Delivery: the run id, but each pause of a run for a reboot has its own.
        id: options.deliveryId ?? body.id,
        created_at: new Date().toISOString(),
        url_source: target.source,
        url: target.source === 'flag' ? target.url : null,
        body: JSON.stringify(body),
        attempts: 0,
        last_error: null,
        kind: body.kind,
      },
      options,
    );
  }

  /** Queues a callback; never throws (what failed is logged). */
  async queue(body: CallbackBody, override?: string, options: QueueOptions = {}): Promise<string | null> {
    try {
      return await this.queueOrThrow(body, override, options);
    } catch (err) {
      this.o.log.error(`callback ${body.id} not queued: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  /** Queues a callback held until `release` (a run's outcome, before it is recorded); never throws. */
  hold(body: CallbackBody, override?: string, deliveryId?: string): Promise<string | null> {
    return this.queue(body, override, deliveryId === undefined ? { held: true } : { held: true, deliveryId });
  }

  /** Makes a held callback deliverable (with `body` instead of the one it was held with); never throws. */
  async release(file: string, id: string, body?: CallbackBody): Promise<void> {
    await new Outbox(this.o.stateDir).release(file, body && JSON.stringify(body)).catch((err) => this.o.log.error(`callback ${id} not released: ${(err as Error).message}`));
  }

  /** Callbacks of a run still held (its agent was killed before it released them). */
  held(runId: string): Promise<string[]> {
    return new Outbox(this.o.stateDir).held(runId);
  }

  /**
   * `callback.flush`: delivers what waits, each receiver's oldest first, within `budgetMs` (default
   * [callback] timeout); `requeueDead`: the dead ones first moved back to be sent again.
   */
  flush(options: FlushRequest = {}): Promise<FlushReport> {
    const config = this.o.config();
    const budget = options.budgetMs ?? config.timeoutMs;
    // At -v, when delivery began and with what budget: where a run's last seconds went.
    this.o.log.debug(`callbacks: flushing ${new Outbox(this.o.stateDir).dir} within ${budget} ms`);
    return flushOutbox(this.o.stateDir, { config, log: this.o.log, deadline: Date.now() + budget, lockWaitMs: options.lockWaitMs ?? 0, requeueDead: options.requeueDead ?? false });
  }

  /** Delivers what waits within [callback] timeout; never throws. */
  async deliver(): Promise<void> {
    try {
      const report = await this.flush();
      if (report.waiting.length) this.o.log.warn(`${report.waiting.length} callback(s) wait in ${new Outbox(this.o.stateDir).dir}; bootstrap callback.flush or the next run delivers them`);
    } catch (err) {
      this.o.log.error(`callbacks not sent: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Queue, then deliver within [callback] timeout; never throws. */
  async report(body: CallbackBody, override?: string): Promise<void> {
    if (await this.queue(body, override)) await this.deliver();
  }
}
