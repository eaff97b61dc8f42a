import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tokenize } from '../../../src/smtp/from-header.js';
import { rewriteHeaderSection } from '../../../src/smtp/sender-policy.js';

/** The From rewrite's reading of RFC 5322 section 3.4: which display name survives, byte for byte. */

const ACCOUNT = 'demo@example.com';

/** Rewrites a header section given as UTF-8 text and gives it back the same way. */
function rewrite(header: string): string {
  return rewriteHeaderSection(Buffer.from(header, 'utf8'), ACCOUNT).toString('utf8');
}

describe('From rewrite: which display name is kept', () => {
  it.each([
    ['plain address', 'j@lan.example', '<demo@example.com>'],
    ['angle address only', '<j@lan.example>', '<demo@example.com>'],
    ['name-addr', 'Jane Smith <j@lan.example>', 'Jane Smith <demo@example.com>'],
    ['quoted name with < and >', '"Smith, J <Sales>" <j@lan.example>', '"Smith, J <Sales>" <demo@example.com>'],
    ['quoted name with only <', '"a <b" <j@lan.example>', '"a <b" <demo@example.com>'],
    ['quoted name with an escaped quote and backslash', '"J \\"Jo\\" \\\\ S" <j@lan.example>', '"J \\"Jo\\" \\\\ S" <demo@example.com>'],
    ['quoted name with a comma', '"Smith, Jane" <j@lan.example>', '"Smith, Jane" <demo@example.com>'],
    ['comment before the name', '(Sales) Jane <j@lan.example>', '(Sales) Jane <demo@example.com>'],
    ['comment with < after the address', 'Jane <j@lan.example> (not <this>)', 'Jane <demo@example.com>'],
    ['comment with < inside the name', 'Jane (the <boss>) <j@lan.example>', 'Jane (the <boss>) <demo@example.com>'],
    ['comment as the only name', 'j@lan.example (Office "MFP")', '"Office \\"MFP\\"" <demo@example.com>'],
    ['nested comment with quoted-pairs', 'j@lan.example (Office \\(2\\) (floor 3))', '"Office (2) (floor 3)" <demo@example.com>'],
    ['comment after an angle address without a name', '<j@lan.example> (Jane)', '"Jane" <demo@example.com>'],
    ['encoded-word name', '=?utf-8?q?B=C3=BCro?= <j@lan.example>', '=?utf-8?q?B=C3=BCro?= <demo@example.com>'],
    ['encoded-word in a comment stays unquoted (RFC 2047 section 5)', 'j@lan.example (=?utf-8?q?B=C3=BCro?=)', '=?utf-8?q?B=C3=BCro?= <demo@example.com>'],
    ['8-bit name ending in à (a UTF-8 byte 0xA0 is not whitespace)', 'Voilà <j@lan.example>', 'Voilà <demo@example.com>'],
    ['quoted local part with > in the address', 'Jane <"a>b"@lan.example>', 'Jane <demo@example.com>'],
    ['obsolete route in the address', 'Jane <@relay.example:j@lan.example>', 'Jane <demo@example.com>'],
    ['mailbox list: the first mailbox\'s name', '"Smith, J" <j@lan.example>, Bob <b@lan.example>', '"Smith, J" <demo@example.com>'],
    ['group (RFC 6854): the group\'s name', 'Sales Team: j@lan.example, "B: b" <b@lan.example>;', 'Sales Team <demo@example.com>'],
    ['empty group', 'undisclosed-senders:;', 'undisclosed-senders <demo@example.com>'],
    ['empty value', '', '<demo@example.com>'],
  ])('%s: From: %s', (_name, value, expected) => {
    expect(rewrite(`Subject: x\r\nFrom: ${value}\r\nTo: b@example.org\r\n`)).toBe(`Subject: x\r\nFrom: ${expected}\r\nTo: b@example.org\r\n`);
  });

  it('a folded From: the fold is unfolded (RFC 5322 section 2.2.3), the quoted name otherwise kept', () => {
    expect(rewrite('From: "Smith,\r\n J <Sales>"\r\n\t<j@lan.example>\r\nTo: b@example.org\r\n'))
      .toBe('From: "Smith, J <Sales>" <demo@example.com>\r\nTo: b@example.org\r\n');
  });

  it('the field name in any case (FROM:, from :) and bare LF line ends', () => {
    expect(rewrite('FROM: Jane <j@lan.example>\r\n')).toBe('From: Jane <demo@example.com>\r\n');
    expect(rewrite('from : "a <b" <j@lan.example>\n')).toBe('From: "a <b" <demo@example.com>\n');
    expect(rewrite('X: 1\nFrom: "a\n <b>" <j@lan.example>\nTo: c\n')).toBe('X: 1\nFrom: "a <b>" <demo@example.com>\nTo: c\n');
  });

  it('leaves other fields alone, including ones that merely contain "From:"', () => {
    const header = 'Reply-From: x <y@z>\r\nX-Original-From: "a <b" <c@d>\r\n';
    expect(rewrite(header)).toBe(header);
  });
});

/** A quoted-string of any printable ASCII with < > , ( ) " \ and 8-bit bytes, escaped as RFC 5322 wants. */
const quotedName = fc.array(fc.oneof(
  fc.constantFrom('<', '>', ',', '(', ')', ':', ';', '"', '\\', '@', ' ', 'é', 'à'),
  fc.string({ minLength: 1, maxLength: 4 }).filter((s) => /^[\x20-\x7e]+$/.test(s)),
), { maxLength: 10 }).map((parts) => `"${parts.join('').replace(/["\\]/g, '\\$&')}"`);

const address = fc.constantFrom('j@lan.example', '"a>b"@lan.example', 'x@[192.0.2.1]', '@r.example:j@lan.example');

describe('From rewrite properties', () => {
  it('any quoted display name is kept byte for byte, and the address is the account', () => {
    fc.assert(fc.property(quotedName, address, fc.constantFrom('', ' (c <d>)'), (name, addr, trailer) => {
      expect(rewrite(`From: ${name} <${addr}>${trailer}\r\n`)).toBe(`From: ${name} <${ACCOUNT}>\r\n`);
    }), { numRuns: 2000 });
  });

  it('whatever the value, the result has exactly one top-level address, the account, and a second rewrite changes nothing', () => {
    const anyValue = fc.string({ maxLength: 60, unit: fc.constantFrom('a', ' ', '<', '>', '"', '\\', '(', ')', ',', ':', ';', '[', ']', '@', 'é') });
    fc.assert(fc.property(anyValue, (value) => {
      const once = rewrite(`From: ${value}\r\n`);
      expect(rewrite(once)).toBe(once);
      const rewritten = once.slice('From: '.length, -2);
      const angles = tokenize(rewritten).filter((t) => t.kind === 'angle');
      expect(rewritten.slice(angles.at(-1)?.start, angles.at(-1)?.end)).toBe(`<${ACCOUNT}>`);
      expect(rewritten.endsWith(`<${ACCOUNT}>`)).toBe(true);
    }), { numRuns: 3000 });
  });
});
