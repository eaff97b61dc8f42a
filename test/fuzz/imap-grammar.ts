import fc from 'fast-check';
import { awkwardBytes, awkwardText, crlfJoin, mutated } from './bytes.js';
import { FUZZ_PASSWORD, FUZZ_USER } from './session-rig.js';

/**
 * IMAP pre-login command streams (RFC 3501 / RFC 9051 section 6.1 and 6.2, RFC 7888 LITERAL+,
 * RFC 4959 SASL-IR): tags, the commands a client may send before login, arguments as atoms,
 * quoted strings with escapes and literals whose announced size may lie, SASL exchanges with
 * valid and invalid base64, and raw junk. Some logins carry the right password, so that the
 * property "the mail server is reached only after a right password" is tested both ways.
 */

const tag = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9.]{1,6}$/) },
  // NIL is special only where an nstring may stand; as a tag it is just a tag.
  { weight: 1, arbitrary: fc.constantFrom('NIL', 'nil', 'Nil') },
  { weight: 1, arbitrary: fc.constantFrom('*', '+', '', 'a+b', '"q"', '{1}', 'x%', '(a)') },
);

/** An astring as a client might write it; sizes of literals are sometimes wrong. */
function astring(value: string): fc.Arbitrary<Buffer> {
  const bytes = Buffer.from(value, 'utf8');
  const quoted = `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  return fc.oneof(
    fc.constant(Buffer.from(quoted, 'utf8')),
    fc.constant(Buffer.from(value, 'utf8')), // as an atom: invalid for most values, which is the point
    fc.tuple(fc.boolean(), fc.integer({ min: -2, max: 2 }), fc.nat({ max: 9 })).map(([plus, lie, p]) => {
      const size = Math.max(0, bytes.length + (p < 7 ? 0 : lie));
      return Buffer.concat([Buffer.from(`{${size}${plus ? '+' : ''}}\r\n`), bytes]);
    }),
  );
}

// Unknown users are rarer than in real attacks: each costs the registry a deliberate key
// derivation (so that it takes as long as a known one), and the fuzzer's time is better spent
// on the dialogue.
const username = fc.oneof(
  { weight: 6, arbitrary: fc.constant(FUZZ_USER) },
  { weight: 1, arbitrary: fc.constant(FUZZ_USER.toUpperCase()) },
  { weight: 1, arbitrary: awkwardText },
);
const password = fc.oneof(
  { weight: 3, arbitrary: fc.constant(FUZZ_PASSWORD) },
  { weight: 2, arbitrary: awkwardText },
  { weight: 1, arbitrary: fc.constant(`${FUZZ_PASSWORD} `) },
);

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** A SASL response line: valid base64 of something, garbage, "*" (cancel) or "=". */
function saslAnswer(text: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: text.map((t) => Buffer.from(b64(t))) },
    { weight: 1, arbitrary: fc.constantFrom('*', '=', '', 'QQ', 'QR==', '!!!', '====').map((t) => Buffer.from(t)) },
    { weight: 1, arbitrary: awkwardBytes(32) },
  );
}

const plainMessage = fc.tuple(fc.constantFrom('', FUZZ_USER, 'other'), username, password, fc.boolean())
  .map(([authz, user, pass, wellFormed]) => (wellFormed ? `${authz}\0${user}\0${pass}` : `${user}\0${pass}`));

const loginCommand = fc.tuple(tag, fc.constantFrom('LOGIN', 'login', 'LoGiN'), username, password)
  .chain(([t, verb, user, pass]) => fc.tuple(astring(user), astring(pass)).map(([u, p]) => Buffer.concat([Buffer.from(`${t} ${verb} `), u, Buffer.from(' '), p, Buffer.from('\r\n')])));

const authPlain = fc.tuple(tag, fc.boolean(), saslAnswer(plainMessage)).map(([t, initial, answer]) =>
  initial
    ? Buffer.concat([Buffer.from(`${t} AUTHENTICATE PLAIN `), answer, Buffer.from('\r\n')])
    : crlfJoin([`${t} AUTHENTICATE PLAIN`, answer]));

const authLogin = fc.tuple(tag, fc.boolean(), saslAnswer(username), saslAnswer(password)).map(([t, initial, user, pass]) =>
  initial
    ? Buffer.concat([Buffer.from(`${t} AUTHENTICATE LOGIN `), user, Buffer.from('\r\n'), pass, Buffer.from('\r\n')])
    : crlfJoin([`${t} AUTHENTICATE LOGIN`, user, pass]));

const simpleCommand = fc.tuple(tag, fc.constantFrom(
  'CAPABILITY', 'NOOP', 'ID NIL', 'ID ("name" "fuzz" "version" "1")', 'ID ("a" NIL', 'ID ((("x")))', 'STARTTLS',
  'AUTHENTICATE XOAUTH2', 'AUTHENTICATE', 'SELECT INBOX', 'FROBNICATE', 'CAPABILITY extra', 'LOGIN', 'LOGIN onlyuser',
)).map(([t, c]) => Buffer.from(`${t} ${c}\r\n`));

const rare = fc.tuple(tag, fc.constantFrom('LOGOUT')).map(([t, c]) => Buffer.from(`${t} ${c}\r\n`));

const junkLine = awkwardBytes(40).map((b) => Buffer.concat([b, Buffer.from('\r\n')]));

/** One client utterance. */
export const imapCommand: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: loginCommand },
  { weight: 3, arbitrary: authPlain },
  { weight: 2, arbitrary: authLogin },
  { weight: 3, arbitrary: simpleCommand },
  { weight: 2, arbitrary: junkLine },
  { weight: 1, arbitrary: rare },
);

/** A whole pre-login stream: a few commands, then mutated. */
export function imapStream(maxCommands = 6, maxMutations = 3): fc.Arbitrary<Buffer> {
  return mutated(fc.array(imapCommand, { minLength: 1, maxLength: maxCommands }).map((cs) => Buffer.concat(cs)), maxMutations);
}

/** ASTRING-CHARs (RFC 3501 section 9): what an astring may be sent as, unquoted. */
const ASTRING_ATOM = /^[^\x00-\x20\x7f-\uffff(){%*"\\]+$/;

/** A user name or password: any text, or one a client may send as an atom (NIL included). */
const loginValue = (maxLength: number): fc.Arbitrary<string> => fc.oneof(
  { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('NIL', 'nil', 'a]b', "o'k"), fc.stringMatching(/^[A-Za-z0-9.@!#$&'+,\-\/:;<=>?^_`|~\]]{1,20}$/)) },
);

/** A LOGIN whose arguments are encoded every legal way, to check they come back unchanged. */
export const wellFormedLogin = fc.tuple(tag.filter((t) => /^[A-Za-z0-9.]+$/.test(t)), loginValue(40), loginValue(60))
  .chain(([t, user, pass]) => {
    const legal = (value: string): fc.Arbitrary<Buffer> => {
      const bytes = Buffer.from(value, 'utf8');
      const forms: fc.Arbitrary<Buffer>[] = [
        fc.boolean().map((plus) => Buffer.concat([Buffer.from(`{${bytes.length}${plus ? '+' : ''}}\r\n`), bytes])),
      ];
      if (!/[\r\n\0]/.test(value)) forms.push(fc.constant(Buffer.from(`"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`, 'utf8')));
      if (ASTRING_ATOM.test(value)) forms.push(fc.constant(bytes));
      return fc.oneof(...forms);
    };
    return fc.tuple(legal(user), legal(pass)).map(([u, p]) => ({
      tag: t, user, pass, bytes: Buffer.concat([Buffer.from(`${t} LOGIN `), u, Buffer.from(' '), p, Buffer.from('\r\n')]),
    }));
  });
