import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';

/**
 * A line-level SMTP client for tests that must see the exact replies: send raw lines, read
 * whole replies (every line of a multi-line one, as sent), STARTTLS, and a source address
 * (127.0.0.2 is "outside the network" for relay tests; all of 127.0.0.0/8 is loopback on Linux).
 */

const DEFAULT_TIMEOUT_MS = 10_000;

export interface SmtpWireOptions {
  port: number;
  host?: string;
  /** Bind the client's side to this address. */
  localAddress?: string;
  /** Implicit TLS, verified against this CA for "localhost". */
  tlsCa?: string;
}

export interface WireReply {
  code: number;
  /** The raw lines, e.g. ["550-5.1.1 No such user", "550 5.1.1 Try again"]. */
  lines: string[];
}

export class SmtpWireClient {
  private buffer = '';
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly onData = (chunk: Buffer): void => {
    this.buffer += chunk.toString('latin1');
    this.notify();
  };
  private readonly onClose = (): void => {
    this.closed = true;
    this.notify();
  };

  private constructor(private socket: Socket | TLSSocket) {
    this.listen();
  }

  static async connect(options: SmtpWireOptions): Promise<SmtpWireClient> {
    const host = options.host ?? '127.0.0.1';
    const base = { host, port: options.port, localAddress: options.localAddress };
    const socket = options.tlsCa ? connectTls({ ...base, ca: options.tlsCa, servername: 'localhost' }) : connectTcp(base);
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tlsCa ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new SmtpWireClient(socket);
  }

  /** Connects and reads the 220 greeting. */
  static async open(options: SmtpWireOptions): Promise<SmtpWireClient> {
    const client = await SmtpWireClient.connect(options);
    const greeting = await client.readReply();
    if (greeting.code !== 220) throw new Error(`unexpected greeting ${greeting.lines.join(' | ')}`);
    return client;
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends one command line and reads its reply. */
  async command(line: string): Promise<WireReply> {
    this.send(`${line}\r\n`);
    return this.readReply();
  }

  /** AUTH PLAIN with an initial response. */
  authPlain(user: string, password: string): Promise<WireReply> {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`);
  }

  /** DATA, the message (dot-stuffed here) and the final dot; returns the reply to DATA and the final one. */
  async data(message: Buffer | string): Promise<{ start: WireReply; end: WireReply }> {
    const start = await this.command('DATA');
    if (start.code !== 354) return { start, end: start };
    const text = Buffer.from(message).toString('latin1').replace(/(^|\n)\./g, '$1..');
    this.send(Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
    return { start, end: await this.readReply() };
  }

  async readReply(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<WireReply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine(timeoutMs);
      lines.push(line);
      if (!/^\d{3}-/.test(line)) return { code: Number(line.slice(0, 3)), lines };
    }
  }

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

  /** STARTTLS and the TLS handshake, verifying "localhost" against `ca`. */
  async startTls(ca: string): Promise<WireReply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) return reply;
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    const tls = connectTls({ socket: this.socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    this.socket = tls;
    this.listen();
    return reply;
  }

  /** Half-closes: sends our FIN (over TLS a close_notify first) and goes on reading. */
  endInput(): void {
    this.socket.end();
  }

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
