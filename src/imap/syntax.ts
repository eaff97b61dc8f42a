/**
 * IMAP command syntax for the commands we answer before login (RFC 3501 section 9, RFC 9051):
 * tag, command name, and arguments made of atoms, quoted strings, literals `{n}` and `{n+}`
 * (LITERAL+, RFC 7888) and parenthesised lists (for ID, RFC 2971).
 *
 * NIL is an atom here. It means "no value" only where the grammar allows an nstring (ID's
 * argument and values); as a tag or an astring ("a1 LOGIN nil x") it is the text itself.
 *
 * A literal ends its line, so a command arrives as a first line, then for each literal its
 * bytes and the line that continues the command. `scanLine` reads one line into tokens and
 * says whether a literal follows; `assembleCommand` builds the command from all tokens.
 */

export type ImapArg =
  | { type: 'atom'; value: string }
  | { type: 'string'; value: string; literal: boolean }
  | { type: 'list'; items: ImapArg[] };

export interface ImapCommand {
  tag: string;
  /** Upper case. */
  name: string;
  args: ImapArg[];
}

export type Token = ImapArg | { type: 'open' } | { type: 'close' };

export interface LiteralMarker {
  size: number;
  /** `{n+}`: the client sends the bytes without waiting for our "+" (RFC 7888). */
  nonSynchronizing: boolean;
}

export type LineScan =
  | { ok: true; tokens: Token[]; literal?: LiteralMarker | undefined }
  | { ok: false; tokens: Token[]; error: string };

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x28;
const CLOSE = 0x29;
const LBRACE = 0x7b;

/**
 * ATOM-CHAR plus "]" (ASTRING-CHAR): any visible ASCII except ( ) { SP % * " \ and controls.
 * "]" is allowed because LOGIN takes astrings.
 */
function isAtomChar(b: number): boolean {
  return b > 0x20 && b < 0x7f && b !== OPEN && b !== CLOSE && b !== LBRACE && b !== 0x25 && b !== 0x2a && b !== DQUOTE && b !== BACKSLASH;
}

/**
 * Reads one line (without CRLF) into tokens. `continuation` is set for the line that follows
 * a literal: it must be empty or go on with a space or ")".
 */
export function scanLine(line: Buffer, continuation = false): LineScan {
  const tokens: Token[] = [];
  const fail = (error: string): LineScan => ({ ok: false, tokens, error });
  if (line.includes(0)) return fail('NUL byte in command');
  if (continuation && line.length > 0 && line[0] !== SP && line[0] !== CLOSE) return fail('Missing space after literal');
  let i = 0;
  while (i < line.length) {
    const b = line[i] as number;
    if (b === SP) {
      i++;
      continue;
    }
    if (b === OPEN || b === CLOSE) {
      tokens.push({ type: b === OPEN ? 'open' : 'close' });
      i++;
    } else if (b === DQUOTE) {
      const quoted = scanQuoted(line, i);
      if (typeof quoted === 'string') return fail(quoted);
      tokens.push({ type: 'string', value: quoted.value, literal: false });
      i = quoted.end;
    } else if (b === LBRACE) {
      const literal = scanLiteralMarker(line, i);
      return typeof literal === 'string' ? fail(literal) : { ok: true, tokens, literal };
    } else if (isAtomChar(b)) {
      const start = i;
      while (i < line.length && isAtomChar(line[i] as number)) i++;
      tokens.push({ type: 'atom', value: line.toString('latin1', start, i) });
    } else {
      return fail('Invalid character in command');
    }
    const next = line[i];
    if (next !== undefined && next !== SP && next !== CLOSE && b !== OPEN) return fail('Missing space between arguments');
  }
  return { ok: true, tokens };
}

/** A quoted string from `start` (the opening quote): only \\ and \" are valid escapes. */
function scanQuoted(line: Buffer, start: number): { value: string; end: number } | string {
  const bytes: number[] = [];
  for (let i = start + 1; i < line.length; i++) {
    const b = line[i] as number;
    if (b === DQUOTE) return { value: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (b === BACKSLASH) {
      const escaped = line[++i];
      if (escaped !== DQUOTE && escaped !== BACKSLASH) return 'Invalid escape in quoted string';
      bytes.push(escaped);
    } else {
      bytes.push(b);
    }
  }
  return 'Unterminated quoted string';
}

/** `{123}` or `{123+}` at the very end of the line. */
function scanLiteralMarker(line: Buffer, start: number): LiteralMarker | string {
  const match = /^\{(\d{1,20})(\+?)\}$/.exec(line.toString('latin1', start));
  if (!match) return 'Invalid literal';
  // Digits beyond what a Number holds exactly are simply "too large" for every limit we have.
  return { size: Number(match[1]), nonSynchronizing: match[2] === '+' };
}

/** The tag of a command: 1*<ASTRING-CHAR except "+">. */
export function isValidTag(tag: string): boolean {
  return /^[\x21-\x7e]+$/.test(tag) && ![...tag].some((c) => '(){%*"\\+'.includes(c));
}

/** The tag at the start of a (possibly truncated) line, when there is a plausible one. */
export function guessTag(head: Buffer): string | undefined {
  const space = head.indexOf(SP);
  if (space <= 0) return undefined;
  const tag = head.toString('latin1', 0, space);
  return isValidTag(tag) ? tag : undefined;
}

/** Builds tag, name and argument tree. Errors name what is wrong; the tag is kept when valid. */
export function assembleCommand(tokens: readonly Token[]): { ok: true; command: ImapCommand } | { ok: false; tag?: string | undefined; error: string } {
  const [tagToken, nameToken, ...rest] = tokens;
  const tag = tagToken?.type === 'atom' && isValidTag(tagToken.value) ? tagToken.value : undefined;
  if (!tag) return { ok: false, error: tokens.length === 0 ? 'Empty command line' : 'Invalid tag' };
  if (nameToken?.type !== 'atom' || !/^[A-Za-z]+$/.test(nameToken.value)) return { ok: false, tag, error: 'Missing or invalid command name' };
  const stack: ImapArg[][] = [[]];
  for (const token of rest) {
    const top = stack[stack.length - 1] as ImapArg[];
    if (token.type === 'open') {
      const list: ImapArg = { type: 'list', items: [] };
      top.push(list);
      stack.push(list.items);
    } else if (token.type === 'close') {
      if (stack.length === 1) return { ok: false, tag, error: 'Unbalanced parentheses' };
      stack.pop();
    } else {
      top.push(token);
    }
  }
  if (stack.length !== 1) return { ok: false, tag, error: 'Unbalanced parentheses' };
  return { ok: true, command: { tag, name: nameToken.value.toUpperCase(), args: stack[0] as ImapArg[] } };
}

/** An astring argument (atom, quoted or literal) as text. */
export function astringValue(arg: ImapArg | undefined): string | undefined {
  if (!arg) return undefined;
  return arg.type === 'atom' || arg.type === 'string' ? arg.value : undefined;
}

/** NIL where an nstring is allowed (RFC 3501 section 9: `nil = "NIL"`, case-insensitive). */
export function isNil(arg: ImapArg | undefined): boolean {
  return arg?.type === 'atom' && arg.value.toUpperCase() === 'NIL';
}
