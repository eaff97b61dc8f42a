/**
 * The From field's value as RFC 5322 section 3.4 writes it, read only as far as the From
 * rewrite needs: which display name to keep. Works on latin1 strings (one char per byte), so
 * what it keeps is byte for byte what the client sent, 8-bit UTF-8 included.
 */

/** A top-level piece of an address list: brackets, quotes and comments are one token each. */
interface Token {
  kind: 'quoted' | 'comment' | 'angle' | 'literal' | ',' | ':' | ';' | 'text';
  start: number;
  end: number;
}

/** RFC 5322 WSP and the line breaks unfolding leaves; never U+00A0, which is a UTF-8 byte here. */
const WSP = /^[ \t\r\n]+|[ \t\r\n]+$/g;
/** An encoded-word (RFC 2047); inside a quoted-string a reader would show it undecoded. */
const ENCODED_WORD = /=\?[^?\s]+\?[bq]\?[^?\s]*\?=/i;
/** RFC 5322 atext and WSP: a phrase that needs no quotes. */
const PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ \t]+$/;

/**
 * The display name to keep when From is rewritten to the account's address, '' for none:
 * - name-addr (`Name <a@b>`, `"Smith, J <Sales>" <j@x>`): everything before the angle-addr,
 *   which is the last `<...>` outside quotes and comments, exactly as sent;
 * - addr-spec with a comment (`a@b (Name)`): the comment's text as a quoted display name,
 *   since it is the only name there is (RFC 5322 section 3.4 notes this older habit);
 * - a group (`Team: a@b, c@d;`, allowed in From by RFC 6854): the group's display name;
 * - a mailbox list (`A <a@x>, B <b@x>`): the first mailbox's, as only one address is left.
 * The value must be unfolded (CRLF removed, RFC 5322 section 2.2.3) first.
 */
export function displayNameToKeep(value: string): string {
  const tokens = tokenize(value);
  const end = tokens.findIndex((t) => t.kind === ',' || t.kind === ';' || t.kind === ':');
  const stop = tokens[end];
  if (stop?.kind === ':') return trimWsp(value.slice(0, stop.start));
  const mailbox = end === -1 ? tokens : tokens.slice(0, end);
  const angle = mailbox.findLast((t) => t.kind === 'angle');
  const name = angle ? trimWsp(value.slice(0, angle.start)) : '';
  if (name) return name;
  const comment = mailbox.find((t) => t.kind === 'comment');
  return comment ? phraseOf(unquote(value.slice(comment.start + 1, comment.end - 1))) : '';
}

/** Splits the value into top-level tokens. An unclosed quote, comment or bracket runs to the end. */
export function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < value.length) {
    const start = i;
    const c = value[i];
    let kind: Token['kind'];
    if (c === '"') [kind, i] = ['quoted', skipQuoted(value, i)];
    else if (c === '(') [kind, i] = ['comment', skipComment(value, i)];
    else if (c === '<') [kind, i] = ['angle', skipAngle(value, i)];
    else if (c === '[') [kind, i] = ['literal', skipLiteral(value, i)];
    else if (c === ',' || c === ':' || c === ';') [kind, i] = [c, i + 1];
    else [kind, i] = ['text', skipText(value, i)];
    tokens.push({ kind, start, end: i });
  }
  return tokens;
}

/** quoted-string: `"` ... `"`, where `\x` is a quoted-pair (RFC 5322 section 3.2.4). */
function skipQuoted(value: string, at: number): number {
  for (let i = at + 1; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '"') return i + 1;
  }
  return value.length;
}

/** comment: `(` ... `)`, nested, with quoted-pairs (RFC 5322 section 3.2.2). */
function skipComment(value: string, at: number): number {
  let depth = 0;
  for (let i = at; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '(') depth++;
    else if (value[i] === ')' && --depth === 0) return i + 1;
  }
  return value.length;
}

/** domain-literal: `[` ... `]` with quoted-pairs (obsolete but still parsed). */
function skipLiteral(value: string, at: number): number {
  for (let i = at + 1; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === ']') return i + 1;
  }
  return value.length;
}

/** angle-addr: `<` ... `>`; the addr-spec inside may hold quoted local parts, literals, comments. */
function skipAngle(value: string, at: number): number {
  let i = at + 1;
  while (i < value.length) {
    const c = value[i];
    if (c === '>') return i + 1;
    if (c === '"') i = skipQuoted(value, i);
    else if (c === '(') i = skipComment(value, i);
    else if (c === '[') i = skipLiteral(value, i);
    else i++;
  }
  return value.length;
}

function skipText(value: string, at: number): number {
  let i = at;
  while (i < value.length && !'"(<[,:;'.includes(value[i] ?? '')) i++;
  return i;
}

function trimWsp(text: string): string {
  return text.replace(WSP, '');
}

/** A comment's or quoted-string's text without its quoted-pairs. */
function unquote(text: string): string {
  return text.replace(/\\([\s\S])/g, '$1');
}

/**
 * A name as a display name: quoted, with `"` and `\` escaped; a run of atoms holding an
 * encoded-word stays unquoted, since RFC 2047 section 5 forbids one inside a quoted-string.
 */
function phraseOf(text: string): string {
  const name = trimWsp(text);
  if (!name) return '';
  if (ENCODED_WORD.test(name) && PHRASE.test(name)) return name;
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}
