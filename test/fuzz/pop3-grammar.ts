import fc from 'fast-check';
import { awkwardBytes, awkwardText, crlfJoin, mutated } from './bytes.js';
import { FUZZ_PASSWORD, FUZZ_USER } from './session-rig.js';

/**
 * POP3 AUTHORIZATION-state streams (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS):
 * USER/PASS (PASS takes the rest of the line, spaces included), AUTH PLAIN and LOGIN with and
 * without initial responses, out-of-state TRANSACTION commands, lines past RFC 2449's 255
 * octets, and junk. Some logins carry the right password.
 */

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const line = (text: string): Buffer => Buffer.from(`${text}\r\n`, 'utf8');

// Unknown users are kept rare: each costs the registry a deliberate key derivation.
const username = fc.oneof(
  { weight: 6, arbitrary: fc.constant(FUZZ_USER) },
  { weight: 1, arbitrary: fc.constant(` ${FUZZ_USER}`) },
  { weight: 1, arbitrary: awkwardText },
);
const password = fc.oneof(
  { weight: 3, arbitrary: fc.constant(FUZZ_PASSWORD) },
  { weight: 2, arbitrary: awkwardText },
  { weight: 1, arbitrary: fc.constant(`${FUZZ_PASSWORD} `) },
);
const verbCase = (verb: string) => fc.constantFrom(verb, verb.toLowerCase(), `${verb[0]}${verb.slice(1).toLowerCase()}`);

function saslAnswer(text: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 4, arbitrary: text.map((t) => line(b64(t))) },
    { weight: 1, arbitrary: fc.constantFrom('*', '=', '', 'QQ', 'QR==', '!!!').map(line) },
    { weight: 1, arbitrary: awkwardBytes(32).map((b) => Buffer.concat([b, Buffer.from('\r\n')])) },
  );
}

const plainMessage = fc.tuple(fc.constantFrom('', FUZZ_USER, 'other'), username, password).map(([authz, u, p]) => `${authz}\0${u}\0${p}`);

const userPass = fc.tuple(verbCase('USER'), username, verbCase('PASS'), password, fc.boolean())
  .map(([u, user, p, pass, both]) => Buffer.concat([line(`${u} ${user}`), both ? line(`${p} ${pass}`) : Buffer.alloc(0)]));

const authPlain = fc.tuple(verbCase('AUTH'), fc.boolean(), saslAnswer(plainMessage)).map(([verb, initial, answer]) =>
  initial ? Buffer.concat([Buffer.from(`${verb} PLAIN `), answer]) : Buffer.concat([line(`${verb} PLAIN`), answer]));

const authLogin = fc.tuple(verbCase('AUTH'), saslAnswer(username), saslAnswer(password)).map(([verb, u, p]) => Buffer.concat([line(`${verb} LOGIN`), u, p]));

const simple = fc.constantFrom(
  'CAPA', 'AUTH', 'AUTH XOAUTH2', 'AUTH PLAIN a b', 'APOP fuzz 0123456789abcdef', 'STLS', 'STAT', 'RETR 1', 'LIST', 'NOOP',
  'PASS early', 'USER', 'CAPA extra', 'FROBNICATE', 'X'.repeat(300),
).map(line);

const rare = fc.constant(line('QUIT'));
const junk = awkwardBytes(40).map((b) => crlfJoin([b]));

export const pop3Command: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: userPass },
  { weight: 3, arbitrary: authPlain },
  { weight: 2, arbitrary: authLogin },
  { weight: 3, arbitrary: simple },
  { weight: 2, arbitrary: junk },
  { weight: 1, arbitrary: rare },
);

export function pop3Stream(maxCommands = 6, maxMutations = 3): fc.Arbitrary<Buffer> {
  return mutated(fc.array(pop3Command, { minLength: 1, maxLength: maxCommands }).map((cs) => Buffer.concat(cs)), maxMutations);
}
