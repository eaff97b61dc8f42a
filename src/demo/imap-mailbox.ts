/**
 * In-memory mail for the demo IMAP server: one INBOX per user, messages as raw RFC 5322 bytes
 * with UIDs, flags and an internal date, and a per-session view that turns changes made by other
 * sessions (or by `deliver`) into untagged EXISTS and EXPUNGE responses (RFC 3501 section 7.4).
 */

export interface StoredMessage {
  readonly uid: number;
  readonly raw: Buffer;
  readonly internalDate: Date;
  readonly flags: Set<string>;
  /** RFC 3501 \Recent: no session has selected the mailbox since this message arrived. */
  recent: boolean;
}

/** The system flags of RFC 3501 section 2.3.2 that the demo stores (keywords are kept too). */
export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'] as const;

export class DemoMailbox {
  readonly uidValidity: number;
  uidNext = 1;
  private readonly byUid = new Map<number, StoredMessage>();
  private readonly listeners = new Set<() => void>();

  constructor(uidValidity: number) {
    this.uidValidity = uidValidity;
  }

  /** Messages in UID order, which is also sequence-number order for a fresh view. */
  get messages(): StoredMessage[] {
    return [...this.byUid.values()];
  }

  get(uid: number): StoredMessage | undefined {
    return this.byUid.get(uid);
  }

  append(raw: Buffer, flags: Iterable<string> = [], internalDate = new Date()): StoredMessage {
    const message: StoredMessage = { uid: this.uidNext++, raw, internalDate, flags: new Set(flags), recent: true };
    this.byUid.set(message.uid, message);
    this.changed();
    return message;
  }

  /** Removes the given messages; returns nothing, views learn of it through sync(). */
  remove(uids: Iterable<number>): void {
    let any = false;
    for (const uid of uids) any = this.byUid.delete(uid) || any;
    if (any) this.changed();
  }

  /** Calls `listener` after every change; returns the function that unsubscribes it. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

/** All users' mailboxes. User names are matched exactly as authenticated. */
export class DemoMailStore {
  private readonly boxes = new Map<string, DemoMailbox>();
  private nextUidValidity = Math.floor(Date.now() / 1000);

  /** The user's INBOX, created empty on first use. */
  inbox(user: string): DemoMailbox {
    let box = this.boxes.get(user);
    if (!box) {
      box = new DemoMailbox(this.nextUidValidity++);
      this.boxes.set(user, box);
    }
    return box;
  }

  /** Appends a message to the user's INBOX as new mail; selected and idling sessions see EXISTS. */
  deliver(user: string, raw: Buffer | string): StoredMessage {
    return this.inbox(user).append(typeof raw === 'string' ? Buffer.from(raw) : raw);
  }
}

/**
 * What one session believes the mailbox holds: the UIDs in sequence-number order. Sequence
 * numbers change only when the session is told, through sync().
 */
export class MailboxView {
  readonly uids: number[];

  constructor(readonly box: DemoMailbox) {
    this.uids = box.messages.map((message) => message.uid);
  }

  get exists(): number {
    return this.uids.length;
  }

  /** The message at a sequence number, unless another session expunged it meanwhile. */
  at(seq: number): StoredMessage | undefined {
    const uid = this.uids[seq - 1];
    return uid === undefined ? undefined : this.box.get(uid);
  }

  /** The sequence number of a UID in this view, or 0. */
  seqOf(uid: number): number {
    return this.uids.indexOf(uid) + 1;
  }

  /**
   * Catches up with the mailbox and returns the untagged responses that say so: EXPUNGE from the
   * highest sequence number down, so that each number is valid when sent, then EXISTS.
   */
  sync(): string[] {
    const lines: string[] = [];
    for (let i = this.uids.length - 1; i >= 0; i--) {
      const uid = this.uids[i] as number;
      if (this.box.get(uid)) continue;
      this.uids.splice(i, 1);
      lines.push(`* ${i + 1} EXPUNGE`);
    }
    const last = this.uids[this.uids.length - 1] ?? 0;
    const added = this.box.messages.filter((message) => message.uid > last);
    for (const message of added) this.uids.push(message.uid);
    if (added.length > 0) lines.push(`* ${this.uids.length} EXISTS`);
    return lines;
  }
}

/** Fields of a generated test message; every one has a default. */
export interface DemoMessageFields {
  from?: string;
  to?: string;
  subject?: string;
  date?: Date;
  messageId?: string;
  body?: string;
  /** Pads the body with lines of text until the whole message is at least this many bytes. */
  minBytes?: number;
}

/** Builds a well-formed RFC 5322 message with CRLF line ends, for seeding and `deliver`. */
export function buildMessage(fields: DemoMessageFields = {}): Buffer {
  const head = [
    `From: ${fields.from ?? 'Demo Sender <sender@example.com>'}`,
    `To: ${fields.to ?? 'demo@example.com'}`,
    `Subject: ${fields.subject ?? 'Hello from the demo IMAP server'}`,
    `Date: ${(fields.date ?? new Date()).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${fields.messageId ?? `<${Date.now()}.${Math.random().toString(36).slice(2)}@demo.invalid>`}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ].join('\r\n');
  const body = (fields.body ?? 'This message was served by oauth-mail-proxy\'s demo IMAP server.').replace(/\r?\n/g, '\r\n');
  const message = Buffer.from(`${head}\r\n\r\n${body}\r\n`);
  const missing = (fields.minBytes ?? 0) - message.length;
  if (missing <= 0) return message;
  return Buffer.concat([message, paddingLines(missing)]);
}

const PAD_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** At least `bytes` bytes of 76-character lines with varying content, each ending in CRLF. */
function paddingLines(bytes: number): Buffer {
  const lineCount = Math.ceil(bytes / 78);
  const out = Buffer.alloc(lineCount * 78);
  for (let i = 0; i < lineCount; i++) {
    const turn = i % PAD_ALPHABET.length;
    const text = (PAD_ALPHABET.slice(turn) + PAD_ALPHABET.slice(0, turn)).repeat(2).slice(0, 65);
    out.write(`${String(i).padStart(10, '0')} ${text}\r\n`, i * 78, 'latin1');
  }
  return out;
}
