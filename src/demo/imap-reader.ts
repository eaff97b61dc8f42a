import type { Duplex } from 'node:stream';

/**
 * Reads CRLF lines and exact byte counts from a socket, with limits and backpressure, for the
 * demo IMAP server. It never concatenates strings: bytes stay in a chunk list until a caller
 * takes them, and the socket is paused while more than HIGH_WATER_BYTES wait unread.
 */

/** Unread bytes kept before the socket is paused (unless a larger literal is awaited). */
const HIGH_WATER_BYTES = 1024 * 1024;

/** Thrown when a line grows past its limit without a line feed. */
export class LineTooLongError extends Error {
  constructor(limit: number) {
    super(`line longer than ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

export class SocketReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private wanted = 0;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size >= Math.max(HIGH_WATER_BYTES, this.wanted)) this.socket.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  /**
   * Stops reading and throws away every byte buffered so far; returns how many there were.
   * Used at STARTTLS: bytes that arrived before the TLS handshake are never trusted
   * (RFC 3501 section 6.2.1; the command-injection class of CVE-2011-0411).
   */
  detach(): number {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    const discarded = this.size;
    this.chunks = [];
    this.size = 0;
    this.ended = true;
    this.notify();
    return discarded;
  }

  /** Next line without its CRLF (a bare LF is tolerated), or null once the peer is gone. */
  async readLine(maxBytes: number): Promise<Buffer | null> {
    for (;;) {
      const end = this.indexOfLineFeed();
      if (end > maxBytes + 1) throw new LineTooLongError(maxBytes);
      if (end >= 0) {
        const line = this.take(end + 1);
        const cut = line.length >= 2 && line[line.length - 2] === 0x0d ? 2 : 1;
        return line.subarray(0, line.length - cut);
      }
      if (this.size > maxBytes) throw new LineTooLongError(maxBytes);
      if (this.ended) return null;
      await this.waitForData();
    }
  }

  /** Exactly `count` bytes (an IMAP literal), or null once the peer is gone. */
  async readExact(count: number): Promise<Buffer | null> {
    this.wanted = count;
    try {
      while (this.size < count) {
        if (this.ended) return null;
        this.socket.resume();
        await this.waitForData();
      }
      return this.take(count);
    } finally {
      this.wanted = 0;
    }
  }

  /** Resolves when some bytes are buffered or the peer has gone (for IDLE's DONE race). */
  private waitForData(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private indexOfLineFeed(): number {
    let offset = 0;
    for (const chunk of this.chunks) {
      const at = chunk.indexOf(0x0a);
      if (at >= 0) return offset + at;
      offset += chunk.length;
    }
    return -1;
  }

  private take(count: number): Buffer {
    const parts: Buffer[] = [];
    let needed = count;
    while (needed > 0) {
      const head = this.chunks[0];
      if (!head) break;
      if (head.length <= needed) {
        parts.push(head);
        this.chunks.shift();
        needed -= head.length;
      } else {
        parts.push(head.subarray(0, needed));
        this.chunks[0] = head.subarray(needed);
        needed = 0;
      }
    }
    this.size -= count;
    if (this.size < HIGH_WATER_BYTES) this.socket.resume();
    return parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts, count);
  }
}
