import { PassThrough } from 'node:stream';
import { createSecureContext } from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCommand, type CommandRead } from '../../../src/imap/command-reader.js';
import { PRELOGIN_COMMANDS, type LoginRequest, type PreLoginContext } from '../../../src/imap/commands.js';
import { MAX_PRELOGIN_LINE_BYTES } from '../../../src/limits.js';
import type { ClientConnection } from '../../../src/net/client-connection.js';
import { LineReader } from '../../../src/net/line-reader.js';
import { scanLine } from '../../../src/imap/syntax.js';
import { awkwardBytes } from '../../fuzz/bytes.js';
import { chunked, fuzzParams, runs, splitAt } from '../../fuzz/bytes.js';
import { imapStream, wellFormedLogin } from '../../fuzz/imap-grammar.js';
import { PROPERTY_TIMEOUT_MS, commonFloods, describeSessionFuzz } from '../../fuzz/session-suite.js';
import { imapTarget } from '../../fuzz/targets.js';
import { getTestCertificates } from '../../fakes/certs.js';

/**
 * Property-based fuzzing of the IMAP pre-login dialogue (issue 8, point 1). Parser level: many
 * cases in memory. Session level: the real handleImapConnection over loopback sockets, with the
 * real account registry and a recording token manager. Case counts scale with FUZZ_SCALE
 * (`npm run test:soak` runs more); FUZZ_SEED replays a failure.
 */

/** Reads commands the way the session does until it would stop: end of input or a hang-up. */
async function readAll(chunks: readonly Buffer[]): Promise<{ results: unknown[]; sent: string[]; maxBuffered: number }> {
  const stream = new PassThrough();
  for (const c of chunks) stream.write(c);
  stream.end();
  const reader = new LineReader(stream, { maxLineBytes: MAX_PRELOGIN_LINE_BYTES });
  const sent: string[] = [];
  const conn = { reader, send: async (l: string | readonly string[]) => void sent.push(...(typeof l === 'string' ? [l] : l)) } as unknown as ClientConnection;
  const results: unknown[] = [];
  let maxBuffered = 0;
  const signal = AbortSignal.timeout(10_000);
  for (let i = 0; i < 500; i++) {
    const read: CommandRead = await readCommand(conn, signal);
    maxBuffered = Math.max(maxBuffered, reader.buffered);
    results.push(summarize(read));
    if (read.kind === 'eof' || (read.kind === 'error' && read.error.code === 'limit_exceeded')) break;
  }
  return { results, sent, maxBuffered };
}

function summarize(read: CommandRead): unknown {
  if (read.kind === 'error') return { kind: 'error', tag: read.tag, code: read.error.code, message: read.error.message };
  return read;
}

describe('IMAP pre-login parser under fuzz', () => {
  it('gives the same commands however the bytes are split, never throws, and buffers at most a line and a chunk', async () => {
    await fc.assert(
      fc.asyncProperty(chunked(imapStream(8, 4), 24), async ({ bytes, chunks }) => {
        const whole = await readAll([bytes]);
        const split = await readAll(chunks);
        expect(split.results).toEqual(whole.results);
        expect(split.sent).toEqual(whole.sent);
        const largestChunk = Math.max(0, ...chunks.map((c) => c.length));
        expect(split.maxBuffered).toBeLessThanOrEqual(MAX_PRELOGIN_LINE_BYTES + 2 + largestChunk);
      }),
      fuzzParams(runs(4000)),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('scans any line without throwing; a literal marker is only ever the end of a line', () => {
    fc.assert(
      fc.property(fc.oneof(awkwardBytes(64), fc.string({ unit: 'binary', maxLength: 64 }).map((t) => Buffer.from(t, 'latin1'))), fc.boolean(), (line, continuation) => {
        const scan = scanLine(line, continuation);
        if (scan.ok && scan.literal) expect(line.toString('latin1')).toMatch(/\{\d+\+?\}$/);
        if (line.includes(0)) expect(scan.ok).toBe(false);
      }),
      fuzzParams(runs(9000)),
    );
  });

  it('reads a LOGIN in every legal encoding back to the exact user name and password', async () => {
    const ctx = {} as PreLoginContext;
    const login = PRELOGIN_COMMANDS.get('LOGIN');
    await fc.assert(
      fc.asyncProperty(wellFormedLogin, fc.array(fc.nat(), { maxLength: 8 }), async (l, cuts) => {
        const { results } = await readAll(splitAt(l.bytes, cuts));
        const first = results[0] as CommandRead;
        expect(first.kind).toBe('command');
        if (first.kind !== 'command') return;
        const request = (await login!.handle(ctx, first.command)) as LoginRequest;
        expect(request.kind).toBe('login');
        expect(request.tag).toBe(l.tag);
        expect(request.username).toBe(l.user);
        expect(request.password.reveal()).toBe(l.pass);
      }),
      fuzzParams(runs(4000)),
    );
  }, PROPERTY_TIMEOUT_MS);
});

const MB = 1024 * 1024;
const literals = Buffer.concat([Buffer.from('a LOGIN {8000+}\r\n'), Buffer.alloc(8000, 'u'), Buffer.from(' {8000+}\r\n'), Buffer.alloc(8000, 'p'), Buffer.from('\r\n')]);

describeSessionFuzz({
  target: imapTarget,
  stream: imapStream,
  cases: 3000,
  tlsCases: 500,
  tlsContext: () => createSecureContext({ cert: getTestCertificates().certPem, key: getTestCertificates().keyPem }),
  greeting: /^\* OK /,
  floods: [
    ...commonFloods(),
    // Each of these logins names an unknown user of 8000 characters, refused and logged (cut short) thousands of times.
    { name: 'one literal after another', prefix: Buffer.alloc(0), unit: literals, read: true, minSent: 2 * MB },
    { name: 'a literal announced larger than allowed, then sent anyway', prefix: Buffer.from('a LOGIN {99999999+}\r\n'), unit: Buffer.alloc(64 * 1024, 'x'), read: true, minSent: 4 * MB },
    // Five bad lines and the proxy hangs up.
    { name: 'a SASL exchange fed endless long lines', prefix: Buffer.from('a AUTHENTICATE PLAIN\r\n'), unit: Buffer.concat([Buffer.alloc(8000, 'Q'), Buffer.from('\r\n')]), read: true, minSent: 2 * MB },
    // The proxy stops reading when its replies cannot go out: the kernel's buffers are all such a client can fill.
    { name: 'commands and never reads a reply', prefix: Buffer.alloc(0), unit: Buffer.from('a NOOP\r\n'.repeat(4096)), read: false, minSent: 1 * MB },
  ],
});
