import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { abortReason } from '../net/deadline.js';
import { DotStuffer } from './dot-stuffing.js';
import type { SmtpUpstreamIo } from './upstream-io.js';

/**
 * The body of one DATA on its way to the server: dot-stuffed, written with backpressure (bounded
 * memory for any size), and watched for a server that stops taking bytes. Made once per DATA,
 * after the 354, so that the drain, close and abort listeners and the stall timer are set up once
 * per message rather than once per chunk: a chunk costs a write, and a promise only when the
 * socket's buffer is full.
 */
export class BodyWriter {
  readonly #io: SmtpUpstreamIo;
  readonly #socket: Socket;
  readonly #signal: AbortSignal;
  readonly #stallMs: number;
  readonly #stuffer = new DotStuffer();
  /** The wait for 'drain' in progress, if any, and when it began (Date.now()). */
  #resolve: (() => void) | undefined;
  #reject: ((err: ProxyError) => void) | undefined;
  #waitingSince = 0;
  #timer: NodeJS.Timeout;

  /**
   * `signal` aborts a wait in progress with its reason. `stallMs` is how long one wait for the
   * server to take bytes may last; time spent waiting for the client does not count.
   */
  constructor(io: SmtpUpstreamIo, signal: AbortSignal, stallMs: number) {
    this.#io = io;
    this.#socket = io.socket;
    this.#signal = signal;
    this.#stallMs = stallMs;
    this.#socket.on('drain', this.#onDrain);
    this.#socket.on('close', this.#onClose);
    signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(this.#checkStall, stallMs).unref();
  }

  /** True when the bytes so far end with LF (or none were written): the end marker may follow. */
  get atLineStart(): boolean {
    return this.#stuffer.atLineStart;
  }

  /**
   * Writes a chunk. Returns undefined when the socket took it at once, else a promise that
   * settles when the caller may write again: on 'drain', or rejected (`upstream_unavailable` when
   * the connection closed or the server stalled, the signal's reason when it aborted).
   */
  write(chunk: Buffer): Promise<void> | undefined {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return Promise.reject(this.#closed());
    if (socket.write(this.#stuffer.stuff(chunk))) return undefined;
    if (this.#signal.aborted) return Promise.reject(abortReason(this.#signal));
    this.#waitingSince = Date.now();
    return new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Stops watching (at the end marker, or when the connection is dropped); a wait in progress fails. */
  close(): void {
    if (this.#reject) this.#settle(this.#closed());
    clearTimeout(this.#timer);
    this.#socket.off('drain', this.#onDrain);
    this.#socket.off('close', this.#onClose);
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  /** Ends the wait in progress, if any: resolved without an error, rejected with one. */
  #settle(err?: ProxyError): void {
    const resolve = this.#resolve;
    const reject = this.#reject;
    if (!resolve || !reject) return;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (err) reject(err);
    else resolve();
  }

  readonly #onDrain = (): void => this.#settle();
  readonly #onClose = (): void => this.#settle(this.#closed());
  readonly #onAbort = (): void => this.#settle(abortReason(this.#signal));

  /**
   * One timer for the whole DATA that re-arms itself, instead of a timer per chunk: it fails the
   * wait in progress once that has lasted `stallMs`, and otherwise looks again when it could.
   */
  readonly #checkStall = (): void => {
    const waited = this.#resolve ? Date.now() - this.#waitingSince : 0;
    if (waited < this.#stallMs) {
      this.#timer = setTimeout(this.#checkStall, this.#stallMs - waited).unref();
      return;
    }
    const cause = new DOMException(`timed out after ${this.#stallMs} ms`, 'TimeoutError');
    this.#settle(new ProxyError('upstream_unavailable', `SMTP server ${this.#io.where} stopped taking the message`, { cause }));
    this.#timer = setTimeout(this.#checkStall, this.#stallMs).unref();
  };

  #closed(): ProxyError {
    return this.#io.fail('closed the connection during DATA');
  }
}
