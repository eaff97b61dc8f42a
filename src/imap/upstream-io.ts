import type { Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import { MAX_UPSTREAM_LINE_BYTES, MAX_UPSTREAM_RESPONSE_BYTES, MAX_UPSTREAM_UNTAGGED_LINES } from '../limits.js';
import { LineReader } from '../net/line-reader.js';

/** A server's tagged reply, with the untagged lines that came before it. */
export interface TaggedReply {
  status: 'OK' | 'NO' | 'BAD';
  /** The text after the status, response code included: "[CAPABILITY ...] Logged in". */
  text: string;
  untagged: string[];
}

/** Our own tags toward the server, distinct from anything a client would be relayed with later. */
const TAG_PREFIX = 'omp';

/**
 * The proxy's side of an IMAP dialogue with a mail server during login: numbered tags,
 * bounded line reads (with literals in untagged lines), and the socket swap for STARTTLS.
 */
export class UpstreamIo {
  socket: Socket;
  readonly reader: LineReader;
  readonly where: string;
  #nextTag = 1;

  constructor(socket: Socket, where: string) {
    this.socket = socket;
    this.where = where;
    this.reader = new LineReader(socket, { maxLineBytes: MAX_UPSTREAM_LINE_BYTES });
  }

  /** Sends `<tag> <command>` and returns the tag. Never pass a secret in `command` to a log. */
  command(command: string): string {
    const tag = `${TAG_PREFIX}${this.#nextTag++}`;
    this.write(`${tag} ${command}`);
    return tag;
  }

  write(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** One server line; an untagged line ending in a literal comes back with the literal inlined. */
  async readLine(signal: AbortSignal): Promise<string> {
    let text = await this.#line(signal);
    for (let literal = /\{(\d{1,10})\}$/.exec(text); literal && text.startsWith('* '); literal = /\{(\d{1,10})\}$/.exec(text)) {
      const size = Number(literal[1]);
      // One bound for the whole response, however many literals it chains.
      if (text.length + size > MAX_UPSTREAM_RESPONSE_BYTES) throw this.fail(`sent a response of over ${MAX_UPSTREAM_RESPONSE_BYTES} bytes during login`);
      const bytes = await this.reader.readBytes(size, signal);
      if (!bytes) throw this.fail('closed the connection');
      text = `${text.slice(0, literal.index)}"${bytes.toString('utf8')}"${await this.#line(signal)}`;
    }
    return text;
  }

  /** Reads until the reply tagged `tag`; untagged lines are collected, never relayed. */
  async readTagged(tag: string, signal: AbortSignal): Promise<TaggedReply> {
    const untagged: string[] = [];
    for (;;) {
      const line = await this.readLine(signal);
      const tagged = parseTagged(line, tag);
      if (tagged) return { ...tagged, untagged };
      if (!line.startsWith('* ')) throw this.fail(`sent an unexpected line: ${preview(line)}`);
      if (untagged.push(line) > MAX_UPSTREAM_UNTAGGED_LINES) throw this.fail('sent too many untagged lines during login');
    }
  }

  /** A ProxyError `upstream_unavailable` naming the server. */
  fail(what: string, cause?: unknown): ProxyError {
    return new ProxyError('upstream_unavailable', `IMAP server ${this.where} ${what}`, { cause });
  }

  async #line(signal: AbortSignal): Promise<string> {
    const result = await this.reader.readLine(signal);
    if (result.kind === 'eof') throw this.fail('closed the connection');
    if (result.kind === 'too_long') throw this.fail(`sent a line longer than ${MAX_UPSTREAM_LINE_BYTES} bytes`);
    return result.line.toString('utf8');
  }
}

export function parseTagged(line: string, tag: string): Omit<TaggedReply, 'untagged'> | undefined {
  const match = /^(\S+) (OK|NO|BAD)(?: (.*))?$/i.exec(line);
  if (!match || match[1] !== tag) return undefined;
  return { status: (match[2] as string).toUpperCase() as TaggedReply['status'], text: match[3] ?? '' };
}

/** The capability list from "* CAPABILITY a b" lines or a "[CAPABILITY a b]" response code. */
export function findCapabilities(texts: readonly string[]): string | undefined {
  for (const text of texts) {
    const untagged = /^\* CAPABILITY (.+)$/i.exec(text);
    if (untagged) return (untagged[1] as string).trim();
    const code = /\[CAPABILITY ([^\]]+)\]/i.exec(text);
    if (code) return (code[1] as string).trim();
  }
  return undefined;
}

export function hasCapability(capabilities: string | undefined, name: string): boolean {
  return (capabilities ?? '').toUpperCase().split(' ').includes(name.toUpperCase());
}

/** A server line for an error message: short and printable. */
export function preview(line: string): string {
  const clean = line.replace(/[^\x20-\x7e]+/g, ' ');
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
