import type { Readable } from 'node:stream';
import { abortReason } from './deadline.js';

/** One result of `readLine`. Lines come without their CRLF (a bare LF is accepted too). */
export type LineResult =
  | { kind: 'line'; line: Buffer }
  /** The line grew past the limit. `head` holds its first bytes (to find an IMAP tag); the
   * rest of that line is skipped by the next read, never buffered. */
  | { kind: 'too_long'; head: Buffer }
  /** The peer closed (or the socket failed) before a whole line arrived. */
  | { kind: 'eof' };

export interface LineReaderOptions {
  /** Longest line accepted, without its CRLF. */
  maxLineBytes: number;
}

const HEAD_BYTES = 64;
const EMPTY = Buffer.alloc(0);

/**
 * Reads CRLF lines and exact byte counts (IMAP literals) from a socket, with a limit, and gives
 * back what it buffered (`takeLeftover`) so that nothing is lost when the relay starts.
 *
 * The socket stays paused except while a read waits for data, and every chunk pauses it
 * again, so the buffer never holds more than the current line (or literal) plus one chunk.
 * One read at a time.
 *
 * STARTTLS: `discardAndDetach` drops every buffered plaintext byte before the TLS handshake
 * and `attach` continues on the TLS socket. Bytes pipelined after STARTTLS in plaintext must
 * never be read as if they came over TLS (RFC 3501 section 6.2.1, RFC 2595 section 3.1,
 * CVE-2011-0411).
 */
export class LineReader {
  readonly #maxLineBytes: number;
  #socket: Readable | undefined;
  #buffer: Buffer = EMPTY;
  /** Where the search for LF resumes: bytes before it are known to hold none. */
  #scanned = 0;
  /** Set after a too-long line: its remainder is skipped up to the next LF. */
  #skipping = false;
  #ended = false;
  #wake: (() => void) | undefined;

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#socket?.pause();
    this.#wake?.();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#wake?.();
  };

  constructor(socket: Readable, options: LineReaderOptions) {
    this.#maxLineBytes = options.maxLineBytes;
    this.attach(socket);
  }

  /** Bytes buffered and not yet read. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Starts reading from a (new) socket. */
  attach(socket: Readable): void {
    this.#detachListeners();
    this.#socket = socket;
    this.#ended = socket.readableEnded || socket.destroyed;
    socket.pause();
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
  }

  /**
   * Stops reading and hands back the buffered bytes, which belong to whoever reads the socket
   * next (the relay). The socket is left paused with its own internal buffer intact.
   */
  takeLeftover(): Buffer {
    this.#detachListeners();
    const leftover = this.#buffer;
    this.#reset();
    return leftover;
  }

  /**
   * Before a TLS handshake: stops reading and throws away every buffered byte, including what
   * the socket itself read ahead, so that plaintext pipelined after STARTTLS is neither fed to
   * the TLS engine nor read later as if it were protected. Returns how many bytes were dropped.
   */
  discardAndDetach(): number {
    const socket = this.#detachListeners();
    let dropped = this.#buffer.length;
    if (socket) {
      for (let chunk: unknown = socket.read(); chunk !== null; chunk = socket.read()) {
        dropped += (chunk as Buffer).length;
      }
    }
    this.#reset();
    return dropped;
  }

  /** The next line, or `too_long`, or `eof`. Rejects with the signal's reason when it aborts. */
  async readLine(signal?: AbortSignal): Promise<LineResult> {
    for (;;) {
      if (this.#skipping) this.#skipRestOfLine();
      if (!this.#skipping) {
        const result = this.#takeLine();
        if (result) return result;
      }
      if (this.#ended) return { kind: 'eof' };
      await this.#more(signal);
    }
  }

  /** Exactly `count` bytes (the caller bounds `count`), or undefined at end of stream. */
  async readBytes(count: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    for (;;) {
      if (this.#buffer.length >= count) {
        const bytes = this.#buffer.subarray(0, count);
        this.#consume(count);
        return bytes;
      }
      if (this.#ended) return undefined;
      await this.#more(signal);
    }
  }

  #takeLine(): LineResult | undefined {
    const lf = this.#buffer.indexOf(0x0a, this.#scanned);
    if (lf === -1) {
      this.#scanned = this.#buffer.length;
      // One byte of slack: a CR may be waiting for its LF.
      return this.#buffer.length > this.#maxLineBytes + 1 ? this.#tooLong() : undefined;
    }
    const end = lf > 0 && this.#buffer[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end > this.#maxLineBytes) return this.#tooLong();
    const line = this.#buffer.subarray(0, end);
    this.#consume(lf + 1);
    return { kind: 'line', line };
  }

  #tooLong(): LineResult {
    const head = Buffer.from(this.#buffer.subarray(0, HEAD_BYTES));
    this.#skipping = true;
    return { kind: 'too_long', head };
  }

  #skipRestOfLine(): void {
    const lf = this.#buffer.indexOf(0x0a);
    if (lf === -1) {
      this.#buffer = EMPTY;
      this.#scanned = 0;
      return;
    }
    this.#consume(lf + 1);
    this.#skipping = false;
  }

  #consume(count: number): void {
    this.#buffer = count >= this.#buffer.length ? EMPTY : this.#buffer.subarray(count);
    this.#scanned = 0;
  }

  #reset(): void {
    this.#buffer = EMPTY;
    this.#scanned = 0;
    this.#skipping = false;
  }

  #detachListeners(): Readable | undefined {
    const socket = this.#socket;
    if (!socket) return undefined;
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onEnd);
    socket.off('error', this.#onEnd);
    socket.pause();
    this.#socket = undefined;
    return socket;
  }

  #more(signal: AbortSignal | undefined): Promise<void> {
    const socket = this.#socket;
    if (!socket) return Promise.reject(new Error('LineReader: read after the socket was handed over'));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.#wake = undefined;
        signal?.removeEventListener('abort', onAbort);
        socket.pause();
      };
      const onAbort = (): void => {
        done();
        reject(abortReason(signal as AbortSignal));
      };
      this.#wake = () => {
        done();
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.resume();
    });
  }
}
