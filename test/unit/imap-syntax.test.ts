import { describe, expect, it } from 'vitest';
import { assembleCommand, astringValue, guessTag, isNil, scanLine, type Token } from '../../src/imap/syntax.js';

const scan = (text: string, continuation = false) => scanLine(Buffer.from(text, 'utf8'), continuation);

function command(text: string) {
  const result = scan(text);
  if (!result.ok) throw new Error(result.error);
  return assembleCommand(result.tokens);
}

describe('scanLine and assembleCommand', () => {
  it('reads tag, upper-cased name and atoms', () => {
    const result = command('a001 login alice secret]x');
    expect(result).toEqual({ ok: true, command: { tag: 'a001', name: 'LOGIN', args: [
      { type: 'atom', value: 'alice' }, { type: 'atom', value: 'secret]x' },
    ] } });
  });

  it('reads quoted strings with \\\\ and \\" escapes, UTF-8 inside', () => {
    const result = command('t LOGIN "al ice" "p\\"w\\\\d é"');
    expect(result.ok && result.command.args).toEqual([
      { type: 'string', value: 'al ice', literal: false },
      { type: 'string', value: 'p"w\\d é', literal: false },
    ]);
  });

  it('refuses other escapes and unterminated quotes', () => {
    expect(scan('t LOGIN "a\\n" b')).toMatchObject({ ok: false, error: 'Invalid escape in quoted string' });
    expect(scan('t LOGIN "abc')).toMatchObject({ ok: false, error: 'Unterminated quoted string' });
  });

  it('reads lists (ID); NIL is an atom, "no value" only where an nstring may stand', () => {
    expect(command('x ID NIL')).toMatchObject({ ok: true, command: { name: 'ID', args: [{ type: 'atom', value: 'NIL' }] } });
    const id = command('x ID ("name" "mutt" "version" nil)');
    expect(id.ok && id.command.args).toEqual([{ type: 'list', items: [
      { type: 'string', value: 'name', literal: false }, { type: 'string', value: 'mutt', literal: false },
      { type: 'string', value: 'version', literal: false }, { type: 'atom', value: 'nil' },
    ] }]);
    expect(isNil({ type: 'atom', value: 'nIl' })).toBe(true);
    expect(isNil({ type: 'string', value: 'NIL', literal: false })).toBe(false);
  });

  it('keeps NIL as text where it is a tag or an astring (RFC 3501: tag and astring take any atom)', () => {
    expect(command('niL LOGIN nil NIL')).toEqual({ ok: true, command: { tag: 'niL', name: 'LOGIN', args: [
      { type: 'atom', value: 'nil' }, { type: 'atom', value: 'NIL' },
    ] } });
    expect(astringValue({ type: 'atom', value: 'nil' })).toBe('nil');
  });

  it('finds a synchronising literal {n} at the end of the line', () => {
    expect(scan('a LOGIN {5}')).toEqual({ ok: true, tokens: [{ type: 'atom', value: 'a' }, { type: 'atom', value: 'LOGIN' }], literal: { size: 5, nonSynchronizing: false } });
  });

  it('finds a LITERAL+ {n+} and keeps huge sizes as numbers', () => {
    expect(scan('a LOGIN {12+}')).toMatchObject({ ok: true, literal: { size: 12, nonSynchronizing: true } });
    expect(scan('a LOGIN {2147483648}')).toMatchObject({ ok: true, literal: { size: 2147483648 } });
    expect(scan('a LOGIN {99999999999999999999}')).toMatchObject({ ok: true, literal: { nonSynchronizing: false } });
    const marker = scan('a LOGIN {99999999999999999999}');
    expect(marker.ok && marker.literal && marker.literal.size > 2 ** 40).toBe(true);
  });

  it('refuses a literal marker that does not end the line, and malformed markers', () => {
    expect(scan('a LOGIN {5} x')).toMatchObject({ ok: false, error: 'Invalid literal' });
    expect(scan('a LOGIN {-5}')).toMatchObject({ ok: false });
    expect(scan('a LOGIN {}')).toMatchObject({ ok: false });
  });

  it('checks the line after a literal', () => {
    expect(scan(' {3}', true)).toMatchObject({ ok: true, literal: { size: 3 } });
    expect(scan('', true)).toEqual({ ok: true, tokens: [] });
    expect(scan('x', true)).toMatchObject({ ok: false, error: 'Missing space after literal' });
  });

  it('refuses NUL bytes anywhere in the line', () => {
    expect(scanLine(Buffer.from('a LOGIN "al\0ice" pw'))).toMatchObject({ ok: false, error: 'NUL byte in command' });
    expect(scanLine(Buffer.from('a NOOP\0'))).toMatchObject({ ok: false, error: 'NUL byte in command' });
  });

  it('refuses control and 8-bit bytes outside quoted strings, and missing separators', () => {
    expect(scanLine(Buffer.from([0x61, 0x20, 0x4e, 0x01]))).toMatchObject({ ok: false });
    expect(scan('a LOGIN é x')).toMatchObject({ ok: false });
    expect(scan('a LOGIN "x""y"')).toMatchObject({ ok: false, error: 'Missing space between arguments' });
  });

  it('reports invalid tags and names, keeping a valid tag', () => {
    expect(assembleCommand([])).toEqual({ ok: false, error: 'Empty command line' });
    const plusTag: Token[] = [{ type: 'atom', value: 'a+b' }, { type: 'atom', value: 'NOOP' }];
    expect(assembleCommand(plusTag)).toMatchObject({ ok: false, error: 'Invalid tag' });
    expect(assembleCommand([{ type: 'atom', value: 'a1' }])).toEqual({ ok: false, tag: 'a1', error: 'Missing or invalid command name' });
    const unbalanced = scan('a ID ("x"');
    expect(unbalanced.ok && assembleCommand(unbalanced.tokens)).toEqual({ ok: false, tag: 'a', error: 'Unbalanced parentheses' });
  });

  it('guesses the tag of a truncated line', () => {
    expect(guessTag(Buffer.from('abc LOGIN xxxxxx'))).toBe('abc');
    expect(guessTag(Buffer.from('xxxxxxxxxxxx'))).toBeUndefined();
    expect(guessTag(Buffer.from('* BAD'))).toBeUndefined();
  });
});
