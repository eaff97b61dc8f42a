/**
 * IMAP command syntax for the demo server (RFC 3501 section 9, kept tolerant): tagged command
 * lines with atoms, quoted strings, literals `{n}` and `{n+}` (RFC 7888), parenthesised lists,
 * plus sequence sets and the string forms used in responses.
 */

/** One argument of a command. Section specs like `BODY.PEEK[HEADER.FIELDS (A B)]<0.9>` stay one atom. */
export type ImapToken =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: Buffer }
  | { kind: 'list'; items: ImapToken[] };

export interface ImapCommand {
  tag: string;
  /** Upper-cased; `UID FETCH`, `UID STORE`, ... are folded into one verb. */
  verb: string;
  args: ImapToken[];
}

/** A failed command: becomes `tag NO ...` or `tag BAD ...` in exactly one place, the session loop. */
export class ImapError extends Error {
  constructor(readonly status: 'NO' | 'BAD', message: string) {
    super(message);
    this.name = 'ImapError';
  }
}

const SP = 0x20;
const LITERAL_HEAD = /^\{(\d+)(\+?)\}\r\n/;

/** Splits a complete command (literals inline as `{n}\r\n<bytes>`) into tag, verb and arguments. */
export function parseCommand(raw: Buffer): ImapCommand {
  const cursor = { buf: raw, pos: 0 };
  const tag = readAtom(cursor);
  if (!tag || tag === '+' || tag === '*') throw new ImapError('BAD', 'Missing or invalid tag');
  skipSpaces(cursor);
  let verb = readAtom(cursor).toUpperCase();
  if (!verb) throw new ImapError('BAD', 'Missing command');
  const args = readTokens(cursor, false);
  if (verb === 'UID') {
    const sub = args.shift();
    if (sub?.kind !== 'atom') throw new ImapError('BAD', 'UID needs a command');
    verb = `UID ${sub.value.toUpperCase()}`;
  }
  return { tag, verb, args };
}

/** Best-effort tag of a line that failed to parse, so that the BAD can carry it. */
export function guessTag(raw: Buffer): string {
  const space = raw.indexOf(SP);
  const tag = raw.subarray(0, space < 0 ? raw.length : space).toString('latin1');
  return /^[\x21-\x7e]+$/.test(tag) && tag !== '+' ? tag : '*';
}

interface Cursor {
  buf: Buffer;
  pos: number;
}

function skipSpaces(c: Cursor): void {
  while (c.buf[c.pos] === SP) c.pos++;
}

function readTokens(c: Cursor, inList: boolean): ImapToken[] {
  const items: ImapToken[] = [];
  for (;;) {
    skipSpaces(c);
    const ch = c.buf[c.pos];
    if (ch === undefined) {
      if (inList) throw new ImapError('BAD', 'Unterminated list');
      return items;
    }
    if (ch === 0x29 /* ) */) {
      if (!inList) throw new ImapError('BAD', 'Unexpected )');
      c.pos++;
      return items;
    }
    items.push(readToken(c, ch));
  }
}

function readToken(c: Cursor, ch: number): ImapToken {
  if (ch === 0x28 /* ( */) {
    c.pos++;
    return { kind: 'list', items: readTokens(c, true) };
  }
  if (ch === 0x22 /* " */) return { kind: 'string', value: readQuoted(c) };
  if (ch === 0x7b /* { */) return { kind: 'string', value: readLiteral(c) };
  return { kind: 'atom', value: readAtom(c) };
}

function readQuoted(c: Cursor): Buffer {
  const bytes: number[] = [];
  for (c.pos++; c.pos < c.buf.length; c.pos++) {
    let ch = c.buf[c.pos] as number;
    if (ch === 0x22) {
      c.pos++;
      return Buffer.from(bytes);
    }
    if (ch === 0x5c /* \ */) ch = c.buf[++c.pos] ?? 0x5c;
    bytes.push(ch);
  }
  throw new ImapError('BAD', 'Unterminated quoted string');
}

function readLiteral(c: Cursor): Buffer {
  const head = LITERAL_HEAD.exec(c.buf.subarray(c.pos, c.pos + 32).toString('latin1'));
  if (!head?.[1]) throw new ImapError('BAD', 'Invalid literal');
  const start = c.pos + head[0].length;
  const end = start + Number(head[1]);
  if (end > c.buf.length) throw new ImapError('BAD', 'Truncated literal');
  c.pos = end;
  return c.buf.subarray(start, end);
}

/** An atom, keeping any `[...]` section (which may hold spaces and parentheses) inside it. */
function readAtom(c: Cursor): string {
  const start = c.pos;
  let depth = 0;
  for (; c.pos < c.buf.length; c.pos++) {
    const ch = c.buf[c.pos];
    if (ch === 0x5b /* [ */) depth++;
    else if (ch === 0x5d /* ] */ && depth > 0) depth--;
    else if (depth === 0 && (ch === SP || ch === 0x28 || ch === 0x29 || ch === 0x22)) break;
  }
  return c.buf.subarray(start, c.pos).toString('utf8');
}

/** The text of an atom or string argument, or undefined for a list or a missing argument. */
export function tokenText(token: ImapToken | undefined): string | undefined {
  if (!token || token.kind === 'list') return undefined;
  return token.kind === 'atom' ? token.value : token.value.toString('utf8');
}

/** Like tokenText but a missing argument is a BAD. */
export function requireText(token: ImapToken | undefined, what: string): string {
  const text = tokenText(token);
  if (text === undefined) throw new ImapError('BAD', `Missing ${what}`);
  return text;
}

/** A sequence set (RFC 3501 section 9, `sequence-set`) as inclusive ranges; `*` is `star`. */
export type SequenceSet = Array<readonly [number, number]>;

export function parseSequenceSet(text: string, star: number): SequenceSet {
  const ranges: SequenceSet = [];
  for (const part of text.split(',')) {
    const bounds = part.split(':');
    if (bounds.length > 2) throw new ImapError('BAD', `Invalid sequence set ${text}`);
    const values = bounds.map((bound) => parseSequenceNumber(bound, star, text));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    ranges.push([lo, hi]);
  }
  return ranges;
}

function parseSequenceNumber(bound: string, star: number, text: string): number {
  if (bound === '*') return star;
  if (!/^[1-9]\d{0,9}$/.test(bound)) throw new ImapError('BAD', `Invalid sequence set ${text}`);
  return Number(bound);
}

export function inSequenceSet(set: SequenceSet, value: number): boolean {
  return set.some(([lo, hi]) => value >= lo && value <= hi);
}

/**
 * A string for a response: NIL, a quoted string, or a literal when the text holds CR, LF,
 * NUL or 8-bit bytes, which a quoted string may not carry (RFC 3501 section 4.3).
 */
export function imapString(value: string | undefined): string {
  if (value === undefined) return 'NIL';
  if (/^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value)) return `"${value.replace(/(["\\])/g, '\\$1')}"`;
  return `{${Buffer.byteLength(value)}}\r\n${value}`;
}

/** An astring for mailbox names: a bare atom where RFC 3501 allows one, quoted otherwise. */
export function imapAstring(value: string): string {
  return /^[A-Za-z0-9._\-/]+$/.test(value) ? value : imapString(value);
}
