import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { MAX_UPSTREAM_LINE_BYTES } from '../limits.js';
import { LineReader } from '../net/line-reader.js';

/**
 * The proxy's side of a POP3 dialogue with a mail server during login: bounded line reads and
 * the socket swap for STLS. Lines come back as raw bytes (for the +OK that is relayed as is)
 * and as text (for matching).
 */
export class Pop3UpstreamIo {
  socket: Socket;
  readonly reader: LineReader;
  readonly where: string;

  constructor(socket: Socket, where: string) {
    this.socket = socket;
    this.where = where;
    this.reader = new LineReader(socket, { maxLineBytes: MAX_UPSTREAM_LINE_BYTES });
  }

  /** Sends one line. Never pass a line holding a secret to a log. */
  write(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  async readLine(signal: AbortSignal): Promise<{ text: string; raw: Buffer }> {
    const result = await this.reader.readLine(signal);
    if (result.kind === 'eof') throw this.fail('closed the connection');
    if (result.kind === 'too_long') throw this.fail(`sent a line longer than ${MAX_UPSTREAM_LINE_BYTES} bytes`);
    return { text: result.line.toString('latin1'), raw: result.line };
  }

  /** A ProxyError `upstream_unavailable` naming the server. */
  fail(what: string, cause?: unknown): ProxyError {
    return new ProxyError('upstream_unavailable', `POP3 server ${this.where} ${what}`, { cause });
  }
}

/** The status of a POP3 reply line (RFC 1939 section 3), or `continue` for a SASL "+ " line. */
export function replyStatus(line: string): 'ok' | 'err' | 'continue' | 'other' {
  if (/^\+OK(?: |$)/i.test(line)) return 'ok';
  if (/^-ERR(?: |$)/i.test(line)) return 'err';
  if (/^\+(?: |$)/.test(line)) return 'continue';
  return 'other';
}

/** A server line for an error message: short and printable. */
export function preview(line: string): string {
  const clean = line.replace(/[^\x20-\x7e]+/g, ' ');
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
