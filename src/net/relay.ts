import type { Duplex } from 'node:stream';
import { RELAY_CLOSE_GRACE_MS } from '../limits.js';

export interface RelayOptions {
  /** Client bytes read ahead during login: sent upstream before anything else. */
  clientLeftover?: Buffer | undefined;
  /** Server bytes read ahead during login: sent to the client before anything else. */
  upstreamLeftover?: Buffer | undefined;
  /** Silence in both directions after which both sides are closed. */
  idleTimeoutMs: number;
  /** Aborting closes both sides at once. */
  signal?: AbortSignal | undefined;
}

export type RelayEndReason = 'client_closed' | 'server_closed' | 'client_error' | 'server_error' | 'idle_timeout' | 'aborted';

export interface RelayResult {
  bytesFromClient: number;
  bytesFromServer: number;
  /** What ended the relay first. */
  reason: RelayEndReason;
}

/**
 * Pipes bytes both ways untouched until both sides are closed. Backpressure: a side that
 * cannot take more pauses the other (no unbounded buffering). When one side ends, the other
 * is ended and gets RELAY_CLOSE_GRACE_MS to close; an error on either side destroys both.
 */
export function relay(client: Duplex, upstream: Duplex, options: RelayOptions): Promise<RelayResult> {
  return new Relay(client, upstream, options).done;
}

class Relay {
  readonly done: Promise<RelayResult>;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  readonly #options: RelayOptions;
  readonly #result: RelayResult = { bytesFromClient: 0, bytesFromServer: 0, reason: 'client_closed' };
  #resolve: (result: RelayResult) => void = () => undefined;
  #reasonSet = false;
  #open = 2;
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => this.#destroyAll('aborted');

  constructor(client: Duplex, upstream: Duplex, options: RelayOptions) {
    this.#client = client;
    this.#upstream = upstream;
    this.#options = options;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    this.#watch(client, 'client', upstream);
    this.#watch(upstream, 'server', client);
    writeLeftover(upstream, options.clientLeftover, (n) => (this.#result.bytesFromClient += n));
    writeLeftover(client, options.upstreamLeftover, (n) => (this.#result.bytesFromServer += n));
    pump(client, upstream, (n) => this.#count('bytesFromClient', n));
    pump(upstream, client, (n) => this.#count('bytesFromServer', n));
    this.#idleTimer = setTimeout(this.#checkIdle, options.idleTimeoutMs);
    if (options.signal?.aborted) this.#onAbort();
    else options.signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #watch(stream: Duplex, name: 'client' | 'server', other: Duplex): void {
    stream.on('error', () => this.#destroyAll(`${name}_error`));
    whenClosed(stream, () => this.#closed(name, other));
  }

  #count(field: 'bytesFromClient' | 'bytesFromServer', bytes: number): void {
    this.#result[field] += bytes;
    this.#lastActivity = Date.now();
  }

  #setReason(reason: RelayEndReason): void {
    if (this.#reasonSet) return;
    this.#reasonSet = true;
    this.#result.reason = reason;
  }

  #destroyAll(reason: RelayEndReason): void {
    this.#setReason(reason);
    this.#client.destroy();
    this.#upstream.destroy();
  }

  #closed(name: 'client' | 'server', other: Duplex): void {
    this.#setReason(`${name}_closed`);
    if (--this.#open > 0) {
      if (!other.writableEnded) other.end();
      this.#graceTimer ??= setTimeout(() => other.destroy(), RELAY_CLOSE_GRACE_MS);
      return;
    }
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#graceTimer);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#resolve(this.#result);
  }

  readonly #checkIdle = (): void => {
    const quiet = Date.now() - this.#lastActivity;
    if (quiet >= this.#options.idleTimeoutMs) this.#destroyAll('idle_timeout');
    else this.#idleTimer = setTimeout(this.#checkIdle, this.#options.idleTimeoutMs - quiet);
  };
}

/** Copies `from` into `to`, pausing `from` while `to` is full and resuming it on 'drain'. */
function pump(from: Duplex, to: Duplex, count: (bytes: number) => void): void {
  const resume = (): void => {
    from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (to.destroyed || to.writableEnded) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', resume);
    }
  });
  from.on('end', () => {
    if (!to.destroyed && !to.writableEnded) to.end();
  });
  from.resume();
}

function writeLeftover(to: Duplex, leftover: Buffer | undefined, count: (bytes: number) => void): void {
  if (!leftover || leftover.length === 0 || to.destroyed) return;
  count(leftover.length);
  to.write(leftover);
}

function whenClosed(stream: Duplex, onClose: () => void): void {
  if (stream.closed) queueMicrotask(onClose);
  else stream.once('close', onClose);
}
