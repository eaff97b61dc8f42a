import { createSecureContext } from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SMTP_HEADER_REWRITE_BYTES } from '../../../src/limits.js';
import { DotStuffer } from '../../../src/smtp/dot-stuffing.js';
import { rewriteFromHeader, wireAddress } from '../../../src/smtp/sender-policy.js';
import { getTestCertificates } from '../../fakes/certs.js';
import { awkwardBytes, chunked, fuzzParams, mutated, runs, splitAt } from '../../fuzz/bytes.js';
import { PROPERTY_TIMEOUT_MS, commonFloods, describeSessionFuzz } from '../../fuzz/session-suite.js';
import { smtpStream } from '../../fuzz/smtp-grammar.js';
import { smtpTarget } from '../../fuzz/targets.js';

/**
 * Property-based fuzzing of SMTP (issue 8, point 1). smtp-server reads the command lines, so
 * the dialogue up to and around AUTH is fuzzed at the socket level, through our hooks. Our own
 * handling of client bytes on the way upstream (dot stuffing, the From rewrite, address
 * conversion) is fuzzed in memory. Case counts scale with FUZZ_SCALE; FUZZ_SEED replays a failure.
 */

/** A message body as a client sends it: lines with CRLF, bare LF, dots at line starts, 8-bit bytes. */
const messageLines = fc.array(fc.oneof(fc.constantFrom('.', '..', '.\r', 'From: "A" <a@example.com>', 'Subject: x', '', 'from:b@x (Bob)', ' folded'), fc.string({ maxLength: 20 })));
const messageBytes = mutated(messageLines.map((lines) => Buffer.from(lines.join(lines.length % 2 ? '\r\n' : '\n'), 'latin1')), 3);

/** smtp-server's unstuffing: a dot at the start of a line is dropped. */
function unstuff(bytes: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x2e && (i === 0 || bytes[i - 1] === 0x0a)) i++;
    if (i < bytes.length) out.push(bytes[i] as number);
  }
  return Buffer.from(out);
}

describe('SMTP byte handling under fuzz', () => {
  it('dot stuffing is the same however the message is split, undoes smtp-server exactly, and never ends a message early', () => {
    fc.assert(
      fc.property(chunked(messageBytes, 16), ({ bytes, chunks }) => {
        const whole = new DotStuffer().stuff(bytes);
        const stuffer = new DotStuffer();
        const pieces = Buffer.concat(chunks.map((c) => stuffer.stuff(c)));
        expect(pieces.equals(whole)).toBe(true);
        expect(unstuff(whole).equals(bytes)).toBe(true);
        // No line of the stuffed message is a lone dot: the end marker cannot be smuggled in.
        expect(/(^|\n)\.(\r?\n|$)/.test(whole.toString('latin1'))).toBe(false);
      }),
      fuzzParams(runs(8000)),
    );
  });

  it('the From rewrite is the same however the message is split, and leaves the body alone', async () => {
    await fc.assert(
      fc.asyncProperty(messageBytes, fc.array(fc.nat(), { maxLength: 8 }), async (bytes, cuts) => {
        const run = async (parts: Buffer[]) => {
          const out: Buffer[] = [];
          for await (const b of rewriteFromHeader((async function* () { yield* parts; })(), 'me@example.com')) out.push(b);
          return Buffer.concat(out);
        };
        const whole = await run([bytes]);
        expect((await run(splitAt(bytes, cuts))).equals(whole)).toBe(true);
        const text = bytes.toString('latin1');
        const bodyStart = text.search(/\n\r?\n/);
        if (bodyStart !== -1 && bodyStart < MAX_SMTP_HEADER_REWRITE_BYTES) {
          const body = text.slice(text.indexOf('\n', bodyStart + 1) + 1);
          expect(whole.toString('latin1').endsWith(body)).toBe(true);
        }
      }),
      fuzzParams(runs(4000)),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('turns any address into one the server can take, or leaves it as it is', () => {
    fc.assert(
      fc.property(fc.oneof(fc.emailAddress(), fc.string({ maxLength: 40 }), awkwardBytes(30).map((b) => b.toString('latin1'))), fc.boolean(), (address, utf8) => {
        const out = wireAddress(address, utf8);
        if (utf8) expect(out).toBe(address);
        else expect(out === address || /^[\x20-\x7e]*$/.test(out.slice(out.lastIndexOf('@') + 1))).toBe(true);
      }),
      fuzzParams(runs(4000)),
    );
  });
});

const MB = 1024 * 1024;
describeSessionFuzz({
  target: smtpTarget,
  stream: smtpStream,
  cases: 4000,
  tlsCases: 500,
  tlsContext: () => createSecureContext({ cert: getTestCertificates().certPem, key: getTestCertificates().keyPem }),
  greeting: /^220 /,
  batch: 25,
  floods: [
    ...commonFloods(),
    { name: 'an AUTH exchange fed endless long lines', prefix: Buffer.from('EHLO x\r\nAUTH PLAIN\r\n'), unit: Buffer.concat([Buffer.alloc(8000, 'Q'), Buffer.from('\r\n')]), read: true, minSent: 2 * MB },
    { name: 'commands and never reads a reply', prefix: Buffer.alloc(0), unit: Buffer.from('NOOP\r\n'.repeat(4096)), read: false, minSent: 1 * MB },
  ],
});
