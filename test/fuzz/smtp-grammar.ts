import fc from 'fast-check';
import { awkwardBytes, awkwardText, crlfJoin, mutated } from './bytes.js';
import { FUZZ_PASSWORD, FUZZ_USER } from './session-rig.js';

/**
 * SMTP streams up to and around AUTH (RFC 5321, RFC 4954 AUTH, RFC 3207 STARTTLS, RFC 2920
 * pipelining): EHLO/HELO, AUTH PLAIN and LOGIN with and without initial responses, a mail
 * transaction before AUTH, DATA with its dot, BDAT, and junk. Some logins carry the right
 * password. smtp-server reads these lines; our hooks decide.
 */

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const line = (text: string): Buffer => Buffer.from(`${text}\r\n`, 'utf8');

// Unknown users are kept rare: each costs the registry a deliberate key derivation.
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

function saslAnswer(text: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: text.map((t) => line(b64(t))) },
    { weight: 1, arbitrary: fc.constantFrom('*', '=', '', 'QQ', 'QR==', '!!!').map(line) },
    { weight: 1, arbitrary: awkwardBytes(32).map((b) => crlfJoin([b])) },
  );
}

const plainMessage = fc.tuple(fc.constantFrom('', FUZZ_USER, 'other'), username, password).map(([authz, u, p]) => `${authz}\0${u}\0${p}`);

const hello = fc.constantFrom('EHLO fuzz.example', 'HELO fuzz', 'ehlo [127.0.0.1]', 'EHLO', 'LHLO x').map(line);

const authPlain = fc.tuple(fc.constantFrom('AUTH', 'auth'), fc.boolean(), saslAnswer(plainMessage)).map(([verb, initial, answer]) =>
  initial ? Buffer.concat([Buffer.from(`${verb} PLAIN `), answer]) : Buffer.concat([line(`${verb} PLAIN`), answer]));

const authLogin = fc.tuple(fc.boolean(), saslAnswer(username), saslAnswer(password)).map(([initial, u, p]) =>
  initial ? Buffer.concat([Buffer.from('AUTH LOGIN '), u, p]) : Buffer.concat([line('AUTH LOGIN'), u, p]));

const transaction = fc.tuple(fc.constantFrom('<a@example.com>', '<>', 'a@example.com', '<"x y"@example.com> SIZE=10', '<a@[127.0.0.1]> SMTPUTF8'), fc.boolean())
  .map(([from, data]) => Buffer.concat([line(`MAIL FROM:${from}`), line('RCPT TO:<b@example.com>'), data ? crlfJoin(['DATA', 'Subject: x', '', '..dot', '.']) : Buffer.alloc(0)]));

const simple = fc.constantFrom('NOOP', 'RSET', 'VRFY a', 'EXPN list', 'HELP', 'STARTTLS', 'AUTH', 'AUTH XOAUTH2 abc', 'AUTH CRAM-MD5', 'BDAT 5 LAST', 'DATA', 'X'.repeat(600), 'MAIL FROM:<x>').map(line);
const rare = fc.constant(line('QUIT'));
const junk = awkwardBytes(40).map((b) => crlfJoin([b]));

export const smtpCommand: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: hello },
  { weight: 4, arbitrary: authPlain },
  { weight: 2, arbitrary: authLogin },
  { weight: 2, arbitrary: transaction },
  { weight: 3, arbitrary: simple },
  { weight: 2, arbitrary: junk },
  { weight: 1, arbitrary: rare },
);

/** Most clients greet first; some streams do not. */
export function smtpStream(maxCommands = 6, maxMutations = 3): fc.Arbitrary<Buffer> {
  const commands = fc.tuple(fc.oneof({ weight: 4, arbitrary: hello }, { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) }), fc.array(smtpCommand, { minLength: 1, maxLength: maxCommands }))
    .map(([greet, cs]) => Buffer.concat([greet, ...cs]));
  return mutated(commands, maxMutations);
}
