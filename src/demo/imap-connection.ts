import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { LineTooLongError, SocketReader } from './imap-reader.js';
import { ImapError } from './imap-syntax.js';

/**
 * One client connection of the demo IMAP server: a reader, a serialised writer that honours
 * backpressure, and the STARTTLS upgrade. The socket changes at STARTTLS, so sessions always go
 * through this object rather than holding the socket.
 */

/** Longest command line (or SASL response line) we accept. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Largest literal we accept (APPEND of a big message). */
export const MAX_LITERAL_BYTES = 64 * 1024 * 1024;
/** Large buffers are written in slices of this size so that 'drain' paces them. */
const WRITE_SLICE_BYTES = 256 * 1024;

export type OutputPart = string | Buffer;

export class ImapConnection {
  private tail: Promise<void> = Promise.resolve();
  reader: SocketReader;

  constructor(
    public socket: Duplex,
    public secure: boolean,
  ) {
    this.reader = new SocketReader(socket);
  }

  /** Queues parts for writing; resolves once they are handed to the socket. Writes never interleave. */
  send(...parts: OutputPart[]): Promise<void> {
    const run = this.tail.then(() => this.writeParts(parts));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Sends one response line, adding the CRLF. */
  line(text: string): Promise<void> {
    return this.send(`${text}\r\n`);
  }

  /**
   * Reads one complete command: a line, and for each literal announced at its end the literal
   * bytes and the rest of the command (RFC 3501 section 7.5, RFC 7888 for `{n+}`). Literals stay
   * inline as `{n}\r\n<bytes>` for parseCommand. Null once the client has gone.
   */
  async readCommand(): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    for (;;) {
      const line = await this.reader.readLine(MAX_LINE_BYTES);
      if (!line) return null;
      parts.push(line);
      const literal = /\{(\d+)(\+?)\}$/.exec(line.subarray(-24).toString('latin1'));
      if (!literal?.[1]) return Buffer.concat(parts);
      const size = Number(literal[1]);
      if (size > MAX_LITERAL_BYTES) throw new ImapError('BAD', `Literal larger than ${MAX_LITERAL_BYTES} bytes`);
      if (!literal[2]) await this.line('+ Ready for literal data');
      const data = await this.reader.readExact(size);
      if (!data) return null;
      parts.push(Buffer.from('\r\n'), data);
    }
  }

  /**
   * Switches to TLS after the tagged OK of STARTTLS has been written. Bytes the client sent
   * after the STARTTLS command are dropped first (RFC 3501 section 6.2.1). Returns their count.
   */
  async upgrade(secureContext: SecureContext): Promise<number> {
    await this.tail;
    const discarded = this.reader.detach();
    const tls = new TLSSocket(this.socket as Socket, { isServer: true, secureContext });
    this.socket = tls;
    this.reader = new SocketReader(tls);
    await new Promise<void>((resolve, reject) => {
      tls.once('secure', resolve);
      tls.once('error', reject);
      tls.once('close', () => reject(new Error('closed during TLS handshake')));
    });
    this.secure = true;
    return discarded;
  }

  close(): void {
    this.socket.destroy();
  }

  private async writeParts(parts: OutputPart[]): Promise<void> {
    for (const part of parts) {
      if (typeof part === 'string') {
        await this.writeChunk(Buffer.from(part, 'utf8'));
        continue;
      }
      for (let at = 0; at < part.length; at += WRITE_SLICE_BYTES) {
        await this.writeChunk(part.subarray(at, at + WRITE_SLICE_BYTES));
      }
    }
  }

  private writeChunk(chunk: Buffer): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return Promise.reject(new Error('connection closed'));
    if (socket.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', closed);
        resolve();
      };
      const closed = (): void => {
        socket.off('drain', done);
        reject(new Error('connection closed'));
      };
      socket.once('drain', done);
      socket.once('close', closed);
    });
  }
}

export { LineTooLongError };
