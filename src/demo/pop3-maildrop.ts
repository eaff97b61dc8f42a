import type { DemoMailbox, StoredMessage } from './imap-mailbox.js';

/**
 * The TRANSACTION state of the demo POP3 server (RFC 1939 sections 5 and 6): a snapshot of the
 * user's INBOX taken at login, numbered from 1, with deletions that take effect only at QUIT.
 */
export class Maildrop {
  readonly #box: DemoMailbox;
  readonly #messages: StoredMessage[];
  readonly #deleted = new Set<number>();

  constructor(box: DemoMailbox) {
    this.#box = box;
    this.#messages = box.messages;
  }

  /** The message with this number, unless it is out of range or marked deleted. */
  get(number: number): StoredMessage | undefined {
    return this.#deleted.has(number) ? undefined : this.#messages[number - 1];
  }

  /** Message numbers not marked deleted, with their messages. */
  live(): Array<[number, StoredMessage]> {
    return this.#messages.map((m, i): [number, StoredMessage] => [i + 1, m]).filter(([n]) => !this.#deleted.has(n));
  }

  /** Marks a message deleted; false when it does not exist or already is. */
  delete(number: number): boolean {
    if (!this.get(number)) return false;
    this.#deleted.add(number);
    return true;
  }

  reset(): void {
    this.#deleted.clear();
  }

  /** The UPDATE state (RFC 1939 section 6): removes the deleted messages from the mailbox. */
  commit(): number {
    const uids = [...this.#deleted].map((n) => this.#messages[n - 1]?.uid).filter((uid): uid is number => uid !== undefined);
    this.#box.remove(uids);
    return uids.length;
  }

  /** The unique-id listing of a message (RFC 1939 section 7, UIDL): stable across sessions. */
  uniqueId(message: StoredMessage): string {
    return `${this.#box.uidValidity}.${message.uid}`;
  }
}

const DOT = 0x2e;
const LF = 0x0a;
const CRLF = Buffer.from('\r\n');

/**
 * A message as the body of a multi-line response (RFC 1939 section 3): every line that starts
 * with "." gets one more, and the message ends with a line break before the terminating ".".
 * The client removes the extra dots and gets the stored bytes back exactly.
 */
export function dotStuff(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let lineStart = 0; lineStart < raw.length; ) {
    if (raw[lineStart] === DOT) {
      parts.push(raw.subarray(start, lineStart), Buffer.from('.'));
      start = lineStart;
    }
    const lf = raw.indexOf(LF, lineStart);
    if (lf === -1) break;
    lineStart = lf + 1;
  }
  parts.push(raw.subarray(start));
  if (raw.length > 0 && raw[raw.length - 1] !== LF) parts.push(CRLF);
  return Buffer.concat(parts);
}

/** The header, the empty line and the first `lines` lines of the body (RFC 1939 section 7, TOP). */
export function topOf(raw: Buffer, lines: number): Buffer {
  const crlf = raw.indexOf('\r\n\r\n');
  const lflf = raw.indexOf('\n\n');
  const candidates = [crlf === -1 ? -1 : crlf + 4, lflf === -1 ? -1 : lflf + 2].filter((n) => n >= 0);
  if (candidates.length === 0) return raw;
  let end = Math.min(...candidates);
  for (let i = 0; i < lines && end < raw.length; i++) {
    const lf = raw.indexOf(LF, end);
    end = lf === -1 ? raw.length : lf + 1;
  }
  return raw.subarray(0, end);
}
