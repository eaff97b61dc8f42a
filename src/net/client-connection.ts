import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ProxyError } from '../errors.js';
import { CLOSE_LINGER_MS } from '../limits.js';
import { abortReason } from './deadline.js';
import { acceptTls } from './local-tls.js';
import { LineReader } from './line-reader.js';

const CLIENT_CLOSED = 'The client closed the connection';

/** One 'error' listener for every client socket whose failures show as 'close' or end of input. */
export function ignoreError(): void {}

/** The error for "the client went away", so that it is not mistaken for a failure of ours. */
export function clientClosedError(): ProxyError {
  return new ProxyError('aborted', CLIENT_CLOSED);
}

export function isClientClosed(err: unknown): boolean {
  return err instanceof ProxyError && err.code === 'aborted' && err.message === CLIENT_CLOSED;
}

/**
 * The client side of a line-based session before login: the socket (replaced once by STARTTLS),
 * its line reader, and a signal that aborts when the client is gone. Protocol-neutral, so that
 * IMAP and POP3 tell their own stories on top of it.
 */
export class ClientConnection {
  #socket: Socket;
  /** Let go by handOver: the relay reads the socket from then on. */
  #reader: LineReader | undefined;
  /** Made on first use of `closed`, let go by handOver (a relayed session may live for days). */
  #gone: AbortController | undefined;

  constructor(socket: Socket, maxLineBytes: number) {
    this.#socket = socket;
    this.#reader = new LineReader(socket, { maxLineBytes });
    this.#watch(socket);
  }

  /** The line reader of the dialogue before login. */
  get reader(): LineReader {
    // A programming error, not a condition of the session: nothing reads lines after login.
    if (!this.#reader) throw new Error('the client connection was handed over to the relay');
    return this.#reader;
  }

  get socket(): Socket {
    return this.#socket;
  }

  get isTls(): boolean {
    return this.#socket instanceof TLSSocket;
  }

  /** Aborts (reason: ProxyError `aborted`) once the client's socket has closed. */
  get closed(): AbortSignal {
    if (!this.#gone) {
      this.#gone = new AbortController();
      if (this.#socket.closed) this.#gone.abort(clientClosedError());
    }
    return this.#gone.signal;
  }

  /**
   * Writes lines, each followed by CRLF, and waits for the socket to drain when its buffer is
   * full, so a client that sends commands but never reads cannot make us queue replies forever.
   */
  async send(lines: string | readonly string[], signal?: AbortSignal): Promise<void> {
    const text = typeof lines === 'string' ? `${lines}\r\n` : lines.map((l) => `${l}\r\n`).join('');
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (socket.write(text)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        socket.off('drain', onDone);
        socket.off('close', onDone);
        signal?.removeEventListener('abort', onAbort);
      };
      const onDone = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortReason(signal as AbortSignal));
      };
      socket.on('drain', onDone);
      socket.on('close', onDone);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A last reply before hanging up (timeout, shutdown). A client that does not read would
   * otherwise hold the session open forever, waiting for room in a full socket buffer: after
   * CLOSE_LINGER_MS the reply is given up. Never throws.
   */
  async goodbye(lines: string | readonly string[]): Promise<void> {
    await this.send(lines, AbortSignal.timeout(CLOSE_LINGER_MS)).catch(() => undefined);
  }

  /**
   * Server side of STARTTLS, called right after the OK reply was written: drops every buffered
   * plaintext byte (the injection defence), then handshakes. Returns the bytes dropped.
   * Throws ProxyError `bad_input` when the handshake fails.
   */
  async startTls(context: SecureContext, signal: AbortSignal): Promise<number> {
    const dropped = this.reader.discardAndDetach();
    const secure = await acceptTls(this.#socket, context, signal);
    this.#socket = secure;
    this.#watch(secure);
    this.reader.attach(secure);
    return dropped;
  }

  /** Hands the buffered client bytes to the relay; the reader is done after this. */
  takeLeftover(): Buffer {
    return this.reader.takeLeftover();
  }

  /**
   * The relay takes over: returns the buffered client bytes like takeLeftover, and lets go of
   * what only the login needed: the line reader, and the `closed` signal (an AbortController
   * and its listener maps, ~0.6 kB per idle session). Reading `closed` later makes a new one.
   */
  handOver(): Buffer {
    const leftover = this.takeLeftover();
    this.#reader = undefined;
    this.#gone = undefined;
    return leftover;
  }

  /**
   * Ends the connection after a goodbye. The client may still be sending (an over-long line,
   * a literal we refused); closing with unread input would reset the connection and could
   * destroy our last reply in flight, so input is read and dropped until the client closes
   * too, for at most CLOSE_LINGER_MS.
   */
  async close(): Promise<void> {
    const socket = this.#socket;
    this.#reader?.takeLeftover();
    if (socket.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('data', () => undefined);
      socket.resume();
      socket.end();
    });
  }

  #watch(socket: Socket): void {
    // Errors surface as end of input to the reader and as 'close' here; never as a crash.
    socket.on('error', ignoreError);
    // 'close' comes once; `on` spares the wrapper `once` would keep for the session's life.
    socket.on('close', () => this.#gone?.abort(clientClosedError()));
  }
}
