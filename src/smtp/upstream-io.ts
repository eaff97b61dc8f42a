import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { MAX_SMTP_REPLY_LINES, MAX_UPSTREAM_LINE_BYTES } from '../limits.js';
import { LineReader } from '../net/line-reader.js';

/**
 * One SMTP reply as the server sent it (RFC 5321 section 4.2): its code, and the text of each
 * line after "code-" or "code " (an enhanced status code, RFC 3463, stays part of the text).
 */
export interface SmtpReply {
  code: number;
  lines: string[];
}

/**
 * The proxy's side of an SMTP dialogue with a mail server: bounded reply reading, command
 * writing, and the socket swap for STARTTLS (the message body goes through BodyWriter).
 */
export class SmtpUpstreamIo {
  socket: Socket;
  readonly reader: LineReader;
  readonly where: string;

  constructor(socket: Socket, where: string) {
    this.socket = socket;
    this.where = where;
    this.reader = new LineReader(socket, { maxLineBytes: MAX_UPSTREAM_LINE_BYTES });
    // Failures surface as EOF on the next read or write; this keeps them from crashing us.
    socket.on('error', () => undefined);
  }

  /** Sends one command line. Never pass a secret in `line` to a log. */
  write(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Reads one reply, all its lines. */
  async readReply(signal: AbortSignal): Promise<SmtpReply> {
    const lines: string[] = [];
    let first = 0;
    for (;;) {
      const result = await this.reader.readLine(signal);
      if (result.kind === 'eof') throw this.fail('closed the connection');
      if (result.kind === 'too_long') throw this.fail(`sent a line longer than ${MAX_UPSTREAM_LINE_BYTES} bytes`);
      const line = result.line.toString('utf8');
      const match = /^([2-5]\d\d)([ -]|$)(.*)$/.exec(line);
      if (!match) throw this.fail(`sent something that is not an SMTP reply: ${preview(line)}`);
      const code = Number(match[1]);
      if (lines.length === 0) first = code;
      else if (code !== first) throw this.fail('changed the reply code within a multi-line reply');
      if (lines.push(match[3] ?? '') > MAX_SMTP_REPLY_LINES) throw this.fail(`sent a reply of more than ${MAX_SMTP_REPLY_LINES} lines`);
      if (match[2] !== '-') return { code, lines };
    }
  }

  /** Sends a command and reads its reply. */
  async command(line: string, signal: AbortSignal): Promise<SmtpReply> {
    this.write(line);
    return this.readReply(signal);
  }

  /** A ProxyError `upstream_unavailable` naming the server. */
  fail(what: string, cause?: unknown): ProxyError {
    return new ProxyError('upstream_unavailable', `SMTP server ${this.where} ${what}`, { cause });
  }
}

/** The reply as one line for error messages and logs: "550 5.1.1 No such user". */
export function describeReply(reply: SmtpReply): string {
  return preview(`${reply.code} ${reply.lines.join(' ')}`);
}

/** A server line for an error message: short and printable. */
export function preview(line: string): string {
  const clean = line.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
}

/** Keywords of an EHLO reply (RFC 5321 section 4.1.1.1), upper case, with their parameters. */
export function parseExtensions(reply: SmtpReply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const [keyword = '', ...params] = line.trim().split(/\s+/);
    if (keyword) extensions.set(keyword.toUpperCase(), params.join(' '));
  }
  return extensions;
}
