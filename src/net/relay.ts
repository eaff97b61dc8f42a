import type { Duplex } from 'node:stream';
import { CLOSE_LINGER_MS, RELAY_CLOSE_GRACE_MS, RELAY_WRITE_BATCH_BYTES } from '../limits.js';

export interface RelayOptions {
  /** Client bytes read ahead during login: sent upstream before anything else. */
  clientLeftover?: Buffer | undefined;
  /** Server bytes read ahead during login: sent to the client before anything else. */
  upstreamLeftover?: Buffer | undefined;
  /** Silence in both directions after which both sides are closed. */
  idleTimeoutMs: number;
  /** Aborting closes both sides at once, or, with `goodbye`, after saying it. */
  signal?: AbortSignal | undefined;
  /**
   * The protocol's goodbye line (without CRLF) for the client when `signal` aborts (a shutdown's
   * deadline). Said only between two of the server's lines: see `Relay.#sayGoodbye`.
   */
  goodbye?: string | undefined;
}

/** `shutdown`: the signal ended a relay that has a goodbye (said, or withheld mid-response). */
export type RelayEndReason = 'client_closed' | 'server_closed' | 'client_error' | 'server_error' | 'idle_timeout' | 'aborted' | 'shutdown';

export interface RelayResult {
  bytesFromClient: number;
  bytesFromServer: number;
  /** What ended the relay first. */
  reason: RelayEndReason;
}

/**
 * Pipes bytes both ways untouched until both sides are closed. Backpressure: a side that
 * cannot take more pauses the other (no unbounded buffering). A side's FIN is passed on to the
 * other, which may still answer (a half-close); from then on RELAY_CLOSE_GRACE_MS of silence
 * ends the relay. When one side closes, the other is ended and gets RELAY_CLOSE_GRACE_MS to
 * close; an error on either side destroys both.
 */
export function relay(client: Duplex, upstream: Duplex, options: RelayOptions): Promise<RelayResult> {
  return new Relay(client, upstream, options).done;
}

/**
 * Ends the cork of `Relay.#attach` (never more than one deep). A module function, so that
 * corking makes no closure; on a stream that is not corked, or destroyed, it does nothing.
 */
function uncork(stream: Duplex): void {
  stream.uncork();
}

/** A timer's callback without a closure. */
function destroy(stream: Duplex): void {
  stream.destroy();
}

const LF = 0x0a;
const CLOSE_BRACE = 0x7d;

/**
 * Whether a goodbye may follow these server bytes: they end a line (LF), and that line does not
 * open an IMAP literal (`{n}` or `{n+}` then CRLF: RFC 3501 section 4.3, RFC 7888), whose
 * bytes the client would take the goodbye for. Reads the last three bytes only, so it can run
 * on every chunk of the hot path; a chunk too short to tell says no (harmless elsewhere: POP3
 * and SMTP lines rarely end in `}`, and then the goodbye is only withheld).
 */
function endsLine(chunk: Buffer): boolean {
  const n = chunk.length;
  return n >= 3 && chunk[n - 1] === LF && chunk[n - 2] !== CLOSE_BRACE && chunk[n - 3] !== CLOSE_BRACE;
}

/** Which count a side's bytes go to. */
const RESULT_FIELD = { client: 'bytesFromClient', server: 'bytesFromServer' } as const;

/**
 * One relayed session. An idle relay may live for days, thousands at a time (IMAP IDLE), so it
 * keeps only what it still needs: no options object, no leftovers, and the listeners it can
 * make later (on backpressure, on a signal) are made then (docs/benchmarks.md, idle memory).
 */
class Relay {
  readonly done: Promise<RelayResult>;
  readonly #client: Duplex;
  readonly #upstream: Duplex;
  /** Shortened to RELAY_CLOSE_GRACE_MS once a side has half-closed (#ended). */
  #idleTimeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #goodbye: string | undefined;
  readonly #result: RelayResult = { bytesFromClient: 0, bytesFromServer: 0, reason: 'client_closed' };
  #resolve!: (result: RelayResult) => void;
  #reasonSet = false;
  #open = 2;
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  /**
   * Whether the last byte relayed to the client ended a server line outside a literal (the
   * session's own login reply did). One field update per server chunk: all the goodbye costs.
   */
  #betweenLines = true;

  constructor(client: Duplex, upstream: Duplex, options: RelayOptions) {
    this.#client = client;
    this.#upstream = upstream;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#signal = options.signal;
    this.#goodbye = options.goodbye;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    // What was read ahead during login goes first; the streams' own bytes follow.
    this.#writeLeftover(upstream, options.clientLeftover, 'bytesFromClient');
    this.#writeLeftover(client, options.upstreamLeftover, 'bytesFromServer');
    // The session's login reply ended a line; what the server sent behind it may not have.
    if (options.upstreamLeftover?.length) this.#betweenLines = endsLine(options.upstreamLeftover);
    this.#attach(client, 'client', upstream);
    this.#attach(upstream, 'server', client);
    client.resume();
    upstream.resume();
    this.#idleTimer = setTimeout(this.#wake, this.#idleTimeoutMs);
    const signal = this.#signal;
    if (signal?.aborted) this.#abort();
    else signal?.addEventListener('abort', this.#wake, { once: true });
  }

  /**
   * Copies `from` into `to`, pausing `from` while `to` is full and resuming it on 'drain', and
   * watches `from` for its end, errors and close. One closure scope per side.
   */
  #attach(from: Duplex, name: 'client' | 'server', to: Duplex): void {
    const field = RESULT_FIELD[name];
    from.on('data', (chunk: Buffer) => {
      this.#count(field, chunk.length);
      if (to.destroyed || to.writableEnded) return;
      // A TLS server's records arrive as one 'data' event each, several per socket read
      // (Dovecot's are 4 kB). Written one by one, each is a send of its own, a read of its own
      // for the client and, toward a TLS client, a record of its own. So what arrives in one
      // turn is held (corked) and goes out in writes of RELAY_WRITE_BATCH_BYTES; the rest at
      // the end of the turn. 'end' and #destroyAll flush what is held.
      if (!to.writableCorked) {
        to.cork();
        setImmediate(uncork, to);
      }
      to.write(chunk);
      if (field === 'bytesFromServer') this.#betweenLines = endsLine(chunk);
      if (to.writableLength >= RELAY_WRITE_BATCH_BYTES) {
        to.uncork();
        to.cork();
      }
      // Asked after the batch went out: a socket that took it at once is not full. One that
      // is full has said so to write(), so its 'drain' will come.
      if (to.writableLength >= to.writableHighWaterMark) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    // A client that half-closed during the login had its 'end' then (the line reader saw it):
    // its FIN is passed on now, after the leftover written before this.
    if (from.readableEnded) queueMicrotask(() => this.#ended(name, to));
    else from.on('end', () => this.#ended(name, to));
    from.on('error', () => this.#destroyAll(`${name}_error`));
    // 'close' comes once: `on`, not `once`, spares a wrapper per listener for the session's life.
    if (from.closed) queueMicrotask(() => this.#closed(name, to));
    else from.on('close', () => this.#closed(name, to));
  }

  #writeLeftover(to: Duplex, leftover: Buffer | undefined, field: 'bytesFromClient' | 'bytesFromServer'): void {
    if (!leftover || leftover.length === 0 || to.destroyed) return;
    this.#result[field] += leftover.length;
    to.write(leftover);
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
    // What a side was handed in this turn is still corked: give it to the socket first, so
    // that a server's last lines before its reset still reach the client.
    uncork(this.#client);
    uncork(this.#upstream);
    this.#client.destroy();
    this.#upstream.destroy();
  }

  /**
   * `from` sent its FIN: it has nothing more to say but may still read (RFC 9293 section 3.6),
   * so the FIN is passed on and the other side may answer what it was sent before it (`nc -N`,
   * a pipelined LOGOUT). A server answers and closes; one that does neither, or a client that
   * never closes after the server's FIN, must not hold the session for the idle timeout
   * (31 min): from now on RELAY_CLOSE_GRACE_MS of silence ends the relay.
   */
  #ended(name: 'client' | 'server', to: Duplex): void {
    this.#setReason(`${name}_closed`);
    if (!to.destroyed && !to.writableEnded) to.end();
    if (this.#idleTimeoutMs <= RELAY_CLOSE_GRACE_MS) return;
    this.#idleTimeoutMs = RELAY_CLOSE_GRACE_MS;
    this.#lastActivity = Date.now();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(this.#wake, RELAY_CLOSE_GRACE_MS);
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
    this.#signal?.removeEventListener('abort', this.#wake);
    this.#resolve(this.#result);
  }

  #abort(): void {
    clearTimeout(this.#idleTimer);
    if (this.#goodbye === undefined) this.#destroyAll('aborted');
    else this.#sayGoodbye(this.#goodbye);
  }

  /**
   * The end of a shutdown's grace period, told in the protocol (SPEC section 6): the server is
   * no longer read, what is held for the client goes out, then the goodbye, but only between
   * two server lines: in the middle of a response or a literal it would be read as part of it,
   * so the client is closed without it there (as an unfinished response it discards anyway).
   * The client then gets CLOSE_LINGER_MS to close; what it still sends is read and dropped, so
   * that no reset destroys the goodbye in flight.
   */
  #sayGoodbye(goodbye: string): void {
    this.#setReason('shutdown');
    const client = this.#client;
    this.#upstream.pause();
    uncork(client);
    if (!client.destroyed && !client.writableEnded) {
      if (this.#betweenLines) client.write(`${goodbye}\r\n`);
      client.end();
    }
    client.resume();
    clearTimeout(this.#graceTimer);
    this.#graceTimer = setTimeout(destroy, CLOSE_LINGER_MS, client);
    this.#upstream.destroy();
  }

  /**
   * The idle timer's callback and the signal's listener in one: a relay may live for days,
   * thousands at a time, and a second closure would be kept per session for an event that comes
   * once. The timer is cleared when the signal aborts, so an aborted signal means the abort.
   */
  readonly #wake = (): void => {
    if (this.#signal?.aborted) return this.#abort();
    const quiet = Date.now() - this.#lastActivity;
    if (quiet >= this.#idleTimeoutMs) this.#destroyAll('idle_timeout');
    else this.#idleTimer = setTimeout(this.#wake, this.#idleTimeoutMs - quiet);
  };
}
