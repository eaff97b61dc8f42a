import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

/**
 * A line-level IMAP client for tests that must see the exact bytes of a dialogue: send raw
 * text, read lines, run a tagged command and collect every line up to its tagged reply.
 * Literals are not interpreted; a line is whatever ends in CRLF.
 */

const DEFAULT_TIMEOUT_MS = 5000;

export interface WireOptions {
  port: number;
  host?: string;
  /** Implicit TLS, verified against this CA for "localhost". */
  tlsCa?: string;
  /** Plain TCP only: bind the client end here, e.g. 127.0.0.2 to be another address (all of 127/8 is loopback on Linux). */
  localAddress?: string;
}

export class WireClient {
  /** When set (the integration harness's secret scan), every client records what it received. */
  static transcriptSink: (() => { text: string }) | undefined;
  private readonly transcript = WireClient.transcriptSink?.();
  private buffer = '';
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer += chunk.toString('latin1');
    if (this.transcript && this.transcript.text.length < 4_000_000) this.transcript.text += chunk.toString('latin1');
    this.notify();
  };
  private readonly onClose = (): void => {
    this.closed = true;
    this.notify();
  };

  private constructor(private socket: Socket | TLSSocket) {
    this.listen();
  }

  static async connect(options: WireOptions): Promise<WireClient> {
    const host = options.host ?? '127.0.0.1';
    const { localAddress } = options;
    const socket = options.tlsCa
      ? connectTls({ host, port: options.port, ca: options.tlsCa, servername: 'localhost' })
      : connectTcp({ host, port: options.port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tlsCa ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new WireClient(socket);
  }

  /** Writes raw text (add your own CRLF). */
  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Next line without CRLF; rejects on timeout or when the server has closed with nothing left. */
  async readLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        return line;
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms; unread: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Sends `tag text` and returns every line up to and including the tagged reply. */
  async command(tag: string, text: string): Promise<string[]> {
    this.send(`${tag} ${text}\r\n`);
    return this.readUntilTagged(tag);
  }

  async readUntilTagged(tag: string): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  /** Starts TLS on the current connection (after the server's STARTTLS OK), verifying "localhost". */
  async startTls(ca: string): Promise<void> {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    const tls = connectTls({ socket: this.socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    this.socket = tls;
    this.listen();
  }

  /**
   * Half-closes: sends our FIN (over TLS a close_notify first) and goes on reading, as
   * `printf ... | nc -N` does (RFC 9293 section 3.6: a closed side may still receive).
   */
  endInput(): void {
    this.socket.end();
  }

  /** Every line left until the server closes; rejects if it has not closed within `timeoutMs`. */
  async readUntilClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    for (;;) {
      try {
        lines.push(await this.readLine(Math.max(1, deadline - Date.now())));
      } catch (err) {
        if (this.closed && this.buffer === '') return lines;
        throw new Error(`${(err as Error).message}; lines so far: ${JSON.stringify(lines)}`);
      }
    }
  }

  /** True once the server has closed the connection. */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }

  private listen(): void {
    this.socket.on('data', this.onData);
    this.socket.on('close', this.onClose);
    this.socket.on('error', () => undefined);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** base64 of an XOAUTH2 initial response (Google's format). */
export function xoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

/** base64 of an OAUTHBEARER initial response (RFC 7628 section 3.1). */
export function oauthBearer(user: string, token: string, host = 'localhost', port = 993): string {
  const name = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  return Buffer.from(`n,a=${name},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}
