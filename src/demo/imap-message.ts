import { imapString } from './imap-syntax.js';

/**
 * Just enough RFC 5322 / MIME reading for the demo server's FETCH: split header and text, pick
 * header fields, and build ENVELOPE and a single-part BODYSTRUCTURE (RFC 3501 section 7.4.2).
 * Messages are never rewritten; every section is a slice of the stored bytes.
 */

export interface MessageParts {
  /** The header including the blank line that ends it (RFC 3501: HEADER includes it). */
  header: Buffer;
  text: Buffer;
}

export function splitMessage(raw: Buffer): MessageParts {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  let end = raw.length;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) end = crlf + 4;
  else if (lf >= 0) end = lf + 2;
  return { header: raw.subarray(0, end), text: raw.subarray(end) };
}

interface HeaderField {
  /** Lower-cased field name. */
  name: string;
  /** Unfolded value, trimmed. */
  value: string;
  /** The field's bytes as stored, folding and line end included. */
  raw: Buffer;
}

/** The header's fields in order; continuation lines (leading space or tab) stay with their field. */
export function headerFields(header: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf('\n', start);
    while (end >= 0 && (header[end + 1] === 0x20 || header[end + 1] === 0x09)) end = header.indexOf('\n', end + 1);
    end = end < 0 ? header.length : end + 1;
    const raw = header.subarray(start, end);
    const text = raw.toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) {
      const value = text.slice(colon + 1).replace(/\r?\n[ \t]/g, ' ').trim();
      fields.push({ name: text.slice(0, colon).trim().toLowerCase(), value, raw });
    }
    start = end;
  }
  return fields;
}

/** HEADER.FIELDS / HEADER.FIELDS.NOT: the chosen fields as stored, then the blank line. */
export function pickHeaderFields(header: Buffer, names: string[], exclude: boolean): Buffer {
  const wanted = new Set(names.map((name) => name.toLowerCase()));
  const picked = headerFields(header).filter((field) => wanted.has(field.name) !== exclude);
  return Buffer.concat([...picked.map((field) => field.raw), Buffer.from('\r\n')]);
}

function firstValue(fields: HeaderField[], name: string): string | undefined {
  return fields.find((field) => field.name === name)?.value;
}

/** ENVELOPE: date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id. */
export function envelope(raw: Buffer): string {
  const fields = headerFields(splitMessage(raw).header);
  const from = addressList(firstValue(fields, 'from'));
  // RFC 3501 7.4.2: sender and reply-to default to from when absent.
  const sender = addressList(firstValue(fields, 'sender')) ?? from;
  const replyTo = addressList(firstValue(fields, 'reply-to')) ?? from;
  const parts = [
    imapString(firstValue(fields, 'date')),
    imapString(firstValue(fields, 'subject')),
    from ?? 'NIL',
    sender ?? 'NIL',
    replyTo ?? 'NIL',
    addressList(firstValue(fields, 'to')) ?? 'NIL',
    addressList(firstValue(fields, 'cc')) ?? 'NIL',
    addressList(firstValue(fields, 'bcc')) ?? 'NIL',
    imapString(firstValue(fields, 'in-reply-to')),
    imapString(firstValue(fields, 'message-id')),
  ];
  return `(${parts.join(' ')})`;
}

/**
 * An address list as `((name adl mailbox host) ...)`. Simplified: commas inside quotes or angle
 * brackets are respected, groups are dropped, and a bare word becomes a mailbox without host.
 */
function addressList(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const addresses = splitAddresses(value).map(address).filter((a): a is string => a !== undefined);
  return addresses.length > 0 ? `(${addresses.join('')})` : undefined;
}

function splitAddresses(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let angle = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') angle = true;
    else if (!quoted && ch === '>') angle = false;
    if (ch === ',' && !quoted && !angle) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  return [...out, current];
}

function address(text: string): string | undefined {
  const trimmed = text.trim();
  if (!trimmed || trimmed.endsWith(';')) return undefined;
  const angle = /^(.*?)<([^>]*)>\s*$/.exec(trimmed);
  const spec = (angle ? angle[2] : trimmed)?.trim() ?? '';
  const name = angle?.[1]?.trim().replace(/^"(.*)"$/, '$1').replace(/\\(.)/g, '$1');
  const at = spec.lastIndexOf('@');
  const mailbox = at < 0 ? spec : spec.slice(0, at);
  const host = at < 0 ? undefined : spec.slice(at + 1);
  return `(${imapString(name || undefined)} NIL ${imapString(mailbox)} ${imapString(host)})`;
}

/**
 * BODYSTRUCTURE (and BODY) of the message as one part, from its Content-Type and
 * Content-Transfer-Encoding. A multipart message is described as a single text/plain part:
 * a known limitation of the demo, harmless to clients that fetch BODY[].
 */
export function bodyStructure(raw: Buffer): string {
  const { header, text } = splitMessage(raw);
  const fields = headerFields(header);
  const contentType = parseContentType(firstValue(fields, 'content-type'));
  const encoding = (firstValue(fields, 'content-transfer-encoding') ?? '7BIT').toUpperCase();
  const params = contentType.params.length > 0
    ? `(${contentType.params.map(([k, v]) => `${imapString(k.toUpperCase())} ${imapString(v)}`).join(' ')})`
    : 'NIL';
  const base = `${imapString(contentType.type)} ${imapString(contentType.subtype)} ${params} NIL NIL ${imapString(encoding)} ${text.length}`;
  if (contentType.type !== 'TEXT') return `(${base})`;
  const lines = text.toString('latin1').split('\n').length - 1;
  return `(${base} ${lines})`;
}

interface ContentType {
  type: string;
  subtype: string;
  params: Array<[string, string]>;
}

function parseContentType(value: string | undefined): ContentType {
  const [kind = '', ...rest] = (value ?? 'text/plain').split(';');
  const [type = 'TEXT', subtype = 'PLAIN'] = kind.trim().toUpperCase().split('/');
  if (type === 'MULTIPART' || !subtype) return { type: 'TEXT', subtype: 'PLAIN', params: [['charset', 'us-ascii']] };
  const params: Array<[string, string]> = [];
  for (const param of rest) {
    const eq = param.indexOf('=');
    if (eq > 0) params.push([param.slice(0, eq).trim(), param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')]);
  }
  return { type, subtype, params };
}
