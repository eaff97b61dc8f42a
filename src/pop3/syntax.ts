import { ProxyError } from '../errors.js';
import { MAX_POP3_COMMAND_LINE_BYTES } from '../limits.js';

/** One POP3 command line (RFC 1939 section 3): a keyword, then arguments after single spaces. */
export interface Pop3Command {
  /** The keyword, upper-cased: keywords are case-insensitive. */
  verb: string;
  /** Everything after the keyword and its one space, unchanged: PASS takes it whole, spaces included. */
  rest: string;
  /** `rest` split on single spaces; empty when nothing follows the keyword. */
  args: string[];
}

export type ParsedCommand = { ok: true; command: Pop3Command } | { ok: false; error: ProxyError };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a command line (without its CRLF). Refused with ProxyError `bad_input`: a line over
 * MAX_POP3_COMMAND_LINE_BYTES with its CRLF (RFC 2449 section 4), control characters (a NUL
 * or a bare CR would let a client smuggle something past a later check), an empty line, a
 * keyword that is not letters and digits.
 *
 * Text is UTF-8 when it decodes as such, else Latin-1: old clients send the password typed in
 * their local 8-bit charset, and Latin-1 keeps those bytes as the characters they most likely
 * stand for rather than turning them into U+FFFD.
 */
export function parseCommandLine(line: Buffer): ParsedCommand {
  if (line.length + 2 > MAX_POP3_COMMAND_LINE_BYTES) return { ok: false, error: lineTooLongError() };
  if (line.some((byte) => byte < 0x20 || byte === 0x7f)) return refuse('Invalid characters in command');
  const text = decodeText(line);
  const space = text.indexOf(' ');
  const keyword = space === -1 ? text : text.slice(0, space);
  if (keyword === '') return refuse('Empty command');
  if (!/^[A-Za-z0-9-]{1,40}$/.test(keyword)) return refuse('Invalid command');
  const rest = space === -1 ? '' : text.slice(space + 1);
  return { ok: true, command: { verb: keyword.toUpperCase(), rest, args: rest === '' ? [] : rest.split(' ') } };
}

/** The answer to an over-long line, whether we read all of it or the reader gave up on it. */
export function lineTooLongError(): ProxyError {
  return new ProxyError('bad_input', `Line too long: at most ${MAX_POP3_COMMAND_LINE_BYTES} octets per command (RFC 2449)`);
}

/** UTF-8 if valid, else Latin-1 (see parseCommandLine). */
export function decodeText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return Buffer.from(bytes).toString('latin1');
  }
}

function refuse(message: string): ParsedCommand {
  return { ok: false, error: new ProxyError('bad_input', message) };
}
