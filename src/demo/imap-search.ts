import type { StoredMessage } from './imap-mailbox.js';
import { headerFields, splitMessage } from './imap-message.js';
import { ImapError, inSequenceSet, parseSequenceSet, tokenText, type ImapCommand, type ImapToken } from './imap-syntax.js';
import type { Session } from './imap-state.js';

/**
 * SEARCH and UID SEARCH (RFC 3501 section 6.4.4) for the keys a mail client or test commonly
 * sends: ALL, flag keys, NEW/OLD/RECENT, sequence and UID sets, NOT, OR, header and text
 * substrings, LARGER/SMALLER. Date keys are not supported and answer BAD.
 */

type Predicate = (message: StoredMessage, seq: number) => boolean;

interface Bounds {
  maxSeq: number;
  maxUid: number;
}

const FLAG_KEYS: Record<string, [flag: string, present: boolean]> = {
  ANSWERED: ['\\Answered', true], UNANSWERED: ['\\Answered', false],
  DELETED: ['\\Deleted', true], UNDELETED: ['\\Deleted', false],
  DRAFT: ['\\Draft', true], UNDRAFT: ['\\Draft', false],
  FLAGGED: ['\\Flagged', true], UNFLAGGED: ['\\Flagged', false],
  SEEN: ['\\Seen', true], UNSEEN: ['\\Seen', false],
};
const HEADER_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);

export async function search(s: Session, cmd: ImapCommand): Promise<string> {
  const view = s.view;
  if (!view) throw new ImapError('BAD', 'No mailbox selected');
  const byUid = cmd.verb === 'UID SEARCH';
  const tokens = [...cmd.args];
  if (tokenText(tokens[0])?.toUpperCase() === 'CHARSET') tokens.splice(0, 2);
  if (tokens.length === 0) throw new ImapError('BAD', 'Missing search criteria');
  const bounds = { maxSeq: view.exists, maxUid: view.uids[view.uids.length - 1] ?? 0 };
  const predicate = parseAll(tokens, bounds);
  const hits: number[] = [];
  for (let seq = 1; seq <= view.exists; seq++) {
    const message = view.at(seq);
    if (message && predicate(message, seq)) hits.push(byUid ? message.uid : seq);
  }
  await s.conn.line(`* SEARCH${hits.map((hit) => ` ${hit}`).join('')}`);
  return `${cmd.verb} completed`;
}

/** Keys side by side are ANDed (RFC 3501 6.4.4). */
function parseAll(tokens: ImapToken[], bounds: Bounds): Predicate {
  const predicates: Predicate[] = [];
  while (tokens.length > 0) predicates.push(parseKey(tokens, bounds));
  return (message, seq) => predicates.every((p) => p(message, seq));
}

function parseKey(tokens: ImapToken[], bounds: Bounds): Predicate {
  const token = tokens.shift() as ImapToken;
  if (token.kind === 'list') return parseAll([...token.items], bounds);
  const key = (tokenText(token) ?? '').toUpperCase();
  const flagKey = FLAG_KEYS[key];
  if (flagKey) return (message) => message.flags.has(flagKey[0]) === flagKey[1];
  if (HEADER_KEYS.has(key)) return headerContains(key, argument(tokens, key));
  switch (key) {
    case 'ALL':
      return () => true;
    case 'NEW':
      return (message) => message.recent && !message.flags.has('\\Seen');
    case 'RECENT':
      return (message) => message.recent;
    case 'OLD':
      return (message) => !message.recent;
    case 'NOT': {
      const inner = parseKey(tokens, bounds);
      return (message, seq) => !inner(message, seq);
    }
    case 'OR': {
      const left = parseKey(tokens, bounds);
      const right = parseKey(tokens, bounds);
      return (message, seq) => left(message, seq) || right(message, seq);
    }
    case 'UID': {
      const set = parseSequenceSet(argument(tokens, key), bounds.maxUid);
      return (message) => inSequenceSet(set, message.uid);
    }
    case 'HEADER': {
      const field = argument(tokens, key);
      return headerContains(field, argument(tokens, key));
    }
    case 'BODY':
    case 'TEXT': {
      const needle = argument(tokens, key).toLowerCase();
      const part = key === 'BODY' ? (m: StoredMessage) => splitMessage(m.raw).text : (m: StoredMessage) => m.raw;
      return (message) => part(message).toString('utf8').toLowerCase().includes(needle);
    }
    case 'LARGER':
    case 'SMALLER': {
      const size = Number(argument(tokens, key));
      return (message) => (key === 'LARGER' ? message.raw.length > size : message.raw.length < size);
    }
    default:
      return sequenceKey(key, bounds);
  }
}

function sequenceKey(key: string, bounds: Bounds): Predicate {
  if (!/^[\d*:,]+$/.test(key)) throw new ImapError('BAD', `Unsupported search key ${key}`);
  const set = parseSequenceSet(key, bounds.maxSeq);
  return (_message, seq) => inSequenceSet(set, seq);
}

function argument(tokens: ImapToken[], key: string): string {
  const text = tokenText(tokens.shift());
  if (text === undefined) throw new ImapError('BAD', `${key} needs an argument`);
  return text;
}

/** Case-insensitive substring of any field with that name; an empty string matches presence. */
function headerContains(field: string, needle: string): Predicate {
  const name = field.toLowerCase();
  const lowered = needle.toLowerCase();
  return (message) =>
    headerFields(splitMessage(message.raw).header).some((f) => f.name === name && f.value.toLowerCase().includes(lowered));
}
