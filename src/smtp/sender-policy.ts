import { domainToASCII } from 'node:url';
import type { AccountSettings } from '../config/resolve.js';
import { MAX_SMTP_HEADER_REWRITE_BYTES } from '../limits.js';
import { displayNameToKeep } from './from-header.js';

/**
 * What the proxy changes in a message on its way upstream, per account: the envelope sender
 * (`sender_policy: rewrite`, because Microsoft 365 refuses to send as anyone but the mailbox,
 * 5.7.60 SendAsDenied) and optionally the header From (`rewrite_from_header`). Nothing else.
 */

/** The envelope sender to send upstream: the client's, or the account's address. */
export function envelopeSender(account: AccountSettings, clientSender: string): string {
  return account.senderPolicy === 'rewrite' ? account.upstreamUsername : clientSender;
}

/**
 * smtp-server hands addresses over with the domain turned into Unicode. Without SMTPUTF8
 * (RFC 6531) the server must get the ASCII form back (RFC 5890 A-labels).
 */
export function wireAddress(address: string, smtpUtf8: boolean): string {
  if (smtpUtf8) return address;
  const at = address.lastIndexOf('@');
  if (at === -1) return address;
  const domain = address.slice(at + 1);
  if (/^[\x20-\x7e]*$/.test(domain) || domain.startsWith('[')) return address;
  const ascii = domainToASCII(domain);
  return ascii ? `${address.slice(0, at + 1)}${ascii}` : address;
}

/**
 * MAIL FROM parameters passed on: SIZE (RFC 1870) and BODY (RFC 6152) when the server announced
 * them, SMTPUTF8 (RFC 6531) always, so that a server without it answers for itself. The rest
 * (DSN, REQUIRETLS) is not announced to clients, so it never arrives.
 */
export function mailParameters(args: Record<string, string | true> | false, extensions: ReadonlyMap<string, string>): string[] {
  const params: string[] = [];
  if (!args) return params;
  if (typeof args.SIZE === 'string' && extensions.has('SIZE')) params.push(`SIZE=${args.SIZE}`);
  if (typeof args.BODY === 'string' && extensions.has('8BITMIME')) params.push(`BODY=${args.BODY.toUpperCase()}`);
  if (args.SMTPUTF8 === true) params.push('SMTPUTF8');
  return params;
}

/**
 * Streams a message with its From header field rewritten to `address`, keeping the display
 * name (RFC 5322 section 3.6.2). Only the header section is held, up to
 * MAX_SMTP_HEADER_REWRITE_BYTES; a longer one passes unchanged; the body is never buffered.
 * `onRead` is told the size of each chunk as the client sent it, before the rewrite.
 */
export async function* rewriteFromHeader(chunks: AsyncIterable<Buffer>, address: string, onRead?: (bytes: number) => void): AsyncGenerator<Buffer> {
  let head: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of chunks) {
    onRead?.(chunk.length);
    if (!head) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (end !== -1 && end <= MAX_SMTP_HEADER_REWRITE_BYTES) {
      yield Buffer.concat([rewriteHeaderSection(head.subarray(0, end), address), head.subarray(end)]);
      head = undefined;
    } else if (end !== -1 || head.length > MAX_SMTP_HEADER_REWRITE_BYTES) {
      yield head;
      head = undefined;
    }
  }
  // A message that is all header (no empty line) ends here, within the limit.
  if (head && head.length > 0) yield rewriteHeaderSection(head, address);
}

/** Where the header section ends: the offset of the empty line that separates it from the body. */
function headerEnd(bytes: Buffer): number {
  if (bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a)) return 0;
  for (let lf = bytes.indexOf(0x0a); lf !== -1; lf = bytes.indexOf(0x0a, lf + 1)) {
    if (bytes[lf + 1] === 0x0a || (bytes[lf + 1] === 0x0d && bytes[lf + 2] === 0x0a)) return lf + 1;
  }
  return -1;
}

/** Replaces each From field (with its folded continuation lines). Latin-1 keeps every byte as it was. */
export function rewriteHeaderSection(header: Buffer, address: string): Buffer {
  const lines = header.toString('latin1').split(/(?<=\n)/);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!/^from[ \t]*:/i.test(line)) {
      out.push(line);
      continue;
    }
    let value = line.slice(line.indexOf(':') + 1);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1] ?? '')) value += lines[++i];
    const eol = /\r?\n$/.exec(value)?.[0] ?? '\r\n';
    // Unfolding removes the line breaks only (RFC 5322 section 2.2.3); the name keeps every other byte.
    const display = displayNameToKeep(value.replace(/\r?\n/g, ''));
    out.push(`From: ${display ? `${display} ` : ''}<${address}>${eol}`);
  }
  return Buffer.from(out.join(''), 'latin1');
}

