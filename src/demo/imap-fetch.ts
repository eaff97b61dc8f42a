import type { OutputPart } from './imap-connection.js';
import type { StoredMessage } from './imap-mailbox.js';
import { bodyStructure, envelope, pickHeaderFields, splitMessage } from './imap-message.js';
import { ImapError, inSequenceSet, parseSequenceSet, requireText, type ImapCommand, type ImapToken } from './imap-syntax.js';
import type { Session } from './imap-state.js';

/**
 * FETCH and UID FETCH (RFC 3501 sections 6.4.5, 6.4.8 and 7.4.2). Body sections are sent as
 * literals straight from the stored Buffer, through the connection's backpressure-aware writer,
 * so a 10 MB message never becomes a string.
 */

type SimpleItem = 'UID' | 'FLAGS' | 'RFC822.SIZE' | 'INTERNALDATE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY';

interface SectionItem {
  /** The name in the response, e.g. `BODY[HEADER]<0>` or `RFC822`. */
  responseName: string;
  section: string;
  /** False when fetching it sets \Seen (RFC 3501 6.4.5: BODY[] and RFC822 do, PEEK does not). */
  peek: boolean;
  partial: readonly [number, number] | undefined;
}

type FetchItem = SimpleItem | SectionItem;

const SIMPLE_ITEMS = new Set<string>(['UID', 'FLAGS', 'RFC822.SIZE', 'INTERNALDATE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY']);
const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
const SECTION_ITEM = /^(BODY(?:\.PEEK)?|BINARY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$/i;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** FETCH or UID FETCH: one untagged FETCH response per matching message, in sequence order. */
export async function fetch(s: Session, cmd: ImapCommand): Promise<string> {
  const view = s.view;
  if (!view) throw new ImapError('BAD', 'No mailbox selected');
  const byUid = cmd.verb === 'UID FETCH';
  const setText = requireText(cmd.args[0], 'sequence set');
  const items = parseFetchItems(cmd.args.slice(1));
  if (byUid && !items.includes('UID')) items.unshift('UID');
  const lastUid = view.uids[view.uids.length - 1] ?? 0;
  const set = parseSequenceSet(setText, byUid ? lastUid : view.exists);
  for (let seq = 1; seq <= view.exists; seq++) {
    const message = view.at(seq);
    if (!message || !inSequenceSet(set, byUid ? message.uid : seq)) continue;
    await s.conn.send(...fetchResponse(seq, message, items, s.readOnly));
  }
  return `${byUid ? 'UID FETCH' : 'FETCH'} completed`;
}

function parseFetchItems(args: ImapToken[]): FetchItem[] {
  const first = args[0];
  if (!first) throw new ImapError('BAD', 'Missing FETCH items');
  const tokens = first.kind === 'list' ? first.items : args.slice(0, 1);
  const names = tokens.map((token) => requireText(token, 'FETCH item'));
  const expanded = names.length === 1 && names[0] ? MACROS[names[0].toUpperCase()] ?? names : names;
  return expanded.map(parseFetchItem);
}

function parseFetchItem(name: string): FetchItem {
  const upper = name.toUpperCase();
  if (SIMPLE_ITEMS.has(upper)) return upper as SimpleItem;
  if (upper === 'RFC822') return { responseName: 'RFC822', section: '', peek: false, partial: undefined };
  if (upper === 'RFC822.HEADER') return { responseName: 'RFC822.HEADER', section: 'HEADER', peek: true, partial: undefined };
  if (upper === 'RFC822.TEXT') return { responseName: 'RFC822.TEXT', section: 'TEXT', peek: false, partial: undefined };
  const match = SECTION_ITEM.exec(name);
  if (!match) throw new ImapError('BAD', `Unsupported FETCH item ${name}`);
  const [, kind = '', section = '', start, length] = match;
  const base = kind.toUpperCase().replace('.PEEK', '');
  const partial = start === undefined ? undefined : ([Number(start), length === undefined ? Infinity : Number(length)] as const);
  return {
    responseName: `${base}[${section}]${start === undefined ? '' : `<${start}>`}`,
    section,
    peek: kind.toUpperCase().endsWith('.PEEK'),
    partial,
  };
}

/** One `* n FETCH (...)` response as parts; sets \Seen first when a non-PEEK body item asks for it. */
function fetchResponse(seq: number, message: StoredMessage, items: FetchItem[], readOnly: boolean): OutputPart[] {
  const marksSeen = !readOnly && items.some((item) => typeof item !== 'string' && !item.peek);
  const newlySeen = marksSeen && !message.flags.has('\\Seen');
  if (newlySeen) message.flags.add('\\Seen');
  const all = newlySeen && !items.includes('FLAGS') ? [...items, 'FLAGS' as const] : items;
  const parts: OutputPart[] = [`* ${seq} FETCH (`];
  all.forEach((item, index) => {
    if (index > 0) parts.push(' ');
    if (typeof item === 'string') {
      parts.push(`${item} ${simpleValue(item, message)}`);
    } else {
      const bytes = sectionBytes(message.raw, item);
      parts.push(`${item.responseName} {${bytes.length}}\r\n`, bytes);
    }
  });
  parts.push(')\r\n');
  return parts;
}

function simpleValue(item: SimpleItem, message: StoredMessage): string {
  switch (item) {
    case 'UID':
      return String(message.uid);
    case 'FLAGS':
      return formatFlags(message.flags);
    case 'RFC822.SIZE':
      return String(message.raw.length);
    case 'INTERNALDATE':
      return `"${formatInternalDate(message.internalDate)}"`;
    case 'ENVELOPE':
      return envelope(message.raw);
    case 'BODYSTRUCTURE':
    case 'BODY':
      return bodyStructure(message.raw);
  }
}

/** The bytes of a section; a single-part message's part 1 is its text (RFC 3501 6.4.5). */
function sectionBytes(raw: Buffer, item: SectionItem): Buffer {
  const whole = selectSection(raw, item.section);
  if (!item.partial) return whole;
  const [start, length] = item.partial;
  return whole.subarray(start, start + length);
}

function selectSection(raw: Buffer, section: string): Buffer {
  const upper = section.toUpperCase();
  if (upper === '') return raw;
  const { header, text } = splitMessage(raw);
  if (upper === 'HEADER') return header;
  if (upper === 'TEXT' || upper === '1') return text;
  const fields = /^HEADER\.FIELDS(\.NOT)?\s*\(([^)]*)\)$/.exec(upper);
  if (fields) return pickHeaderFields(header, (fields[2] ?? '').trim().split(/\s+/), fields[1] !== undefined);
  throw new ImapError('BAD', `Unsupported section ${section}`);
}

export function formatFlags(flags: Iterable<string>): string {
  return `(${[...flags].join(' ')})`;
}

/** date-time of RFC 3501 section 9: `dd-Mon-yyyy hh:mm:ss +0000`, day padded with a space. */
export function formatInternalDate(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const time = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  return `${day}-${MONTHS[date.getUTCMonth()]}-${date.getUTCFullYear()} ${time} +0000`;
}
