import { PassThrough } from 'node:stream';
import { createSecureContext } from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_POP3_COMMAND_LINE_BYTES, MAX_PRELOGIN_LINE_BYTES } from '../../../src/limits.js';
import { LineReader } from '../../../src/net/line-reader.js';
import { PRELOGIN_COMMANDS, type LoginRequest, type PreLoginContext } from '../../../src/pop3/commands.js';
import { parseCommandLine } from '../../../src/pop3/syntax.js';
import { getTestCertificates } from '../../fakes/certs.js';
import { awkwardBytes, chunked, fuzzParams, runs } from '../../fuzz/bytes.js';
import { pop3Stream } from '../../fuzz/pop3-grammar.js';
import { PROPERTY_TIMEOUT_MS, commonFloods, describeSessionFuzz } from '../../fuzz/session-suite.js';
import { pop3Target } from '../../fuzz/targets.js';

/**
 * Property-based fuzzing of the POP3 AUTHORIZATION state (issue 8, point 1): the line reader
 * and command parser in memory, then the real handlePop3Connection over loopback sockets.
 * Case counts scale with FUZZ_SCALE; FUZZ_SEED replays a failure.
 */

/** Reads and parses lines the way the session does, until the end of the input. */
async function readAll(chunks: readonly Buffer[]): Promise<{ results: unknown[]; maxBuffered: number }> {
  const stream = new PassThrough();
  for (const c of chunks) stream.write(c);
  stream.end();
  const reader = new LineReader(stream, { maxLineBytes: MAX_PRELOGIN_LINE_BYTES });
  const results: unknown[] = [];
  let maxBuffered = 0;
  const signal = AbortSignal.timeout(10_000);
  for (;;) {
    const read = await reader.readLine(signal);
    maxBuffered = Math.max(maxBuffered, reader.buffered);
    if (read.kind === 'eof') return { results, maxBuffered };
    if (read.kind === 'too_long') results.push('too_long');
    else {
      const parsed = parseCommandLine(read.line);
      results.push(parsed.ok ? parsed.command : { error: parsed.error.code, message: parsed.error.message });
    }
  }
}

describe('POP3 pre-login parser under fuzz', () => {
  it('gives the same commands however the bytes are split, never throws, and buffers at most a line and a chunk', async () => {
    await fc.assert(
      fc.asyncProperty(chunked(pop3Stream(8, 4), 24), async ({ bytes, chunks }) => {
        const whole = await readAll([bytes]);
        const split = await readAll(chunks);
        expect(split.results).toEqual(whole.results);
        const largestChunk = Math.max(0, ...chunks.map((c) => c.length));
        expect(split.maxBuffered).toBeLessThanOrEqual(MAX_PRELOGIN_LINE_BYTES + 2 + largestChunk);
      }),
      fuzzParams(runs(2500)),
    );
  }, PROPERTY_TIMEOUT_MS);

  it('parses any line without throwing, and accepts only short lines without control characters', () => {
    fc.assert(
      fc.property(fc.oneof(awkwardBytes(64), fc.string({ unit: 'binary', maxLength: 300 }).map((t) => Buffer.from(t, 'latin1'))), (line) => {
        const parsed = parseCommandLine(line);
        if (!parsed.ok) {
          expect(parsed.error.code).toBe('bad_input');
          return;
        }
        expect(line.length + 2).toBeLessThanOrEqual(MAX_POP3_COMMAND_LINE_BYTES);
        expect(line.some((b) => b < 0x20 || b === 0x7f)).toBe(false);
        expect(parsed.command.verb).toMatch(/^[A-Z0-9-]+$/);
      }),
      fuzzParams(runs(10500)),
    );
  });

  it('hands USER and PASS on exactly as typed, spaces and 8-bit characters included', async () => {
    const printable = fc.string({ unit: fc.constantFrom(...' !"#$%&()*+,-./09:;<=>?@AZ[\\]^_`az{|}~éü€ß'), minLength: 1, maxLength: 60 })
      .filter((s) => Buffer.byteLength(s) + 7 <= MAX_POP3_COMMAND_LINE_BYTES);
    await fc.assert(
      fc.asyncProperty(printable, printable, async (user, password) => {
        const ctx = { pendingUser: undefined, send: async () => undefined } as unknown as PreLoginContext;
        const userLine = parseCommandLine(Buffer.from(`USER ${user}`, 'utf8'));
        const passLine = parseCommandLine(Buffer.from(`pass ${password}`, 'utf8'));
        if (!userLine.ok || !passLine.ok) throw new Error('a printable line was refused');
        await PRELOGIN_COMMANDS.get('USER')!.handle(ctx, userLine.command);
        const request = (await PRELOGIN_COMMANDS.get('PASS')!.handle(ctx, passLine.command)) as LoginRequest;
        expect([request.username, request.password.reveal()]).toEqual([user, password]);
      }),
      fuzzParams(runs(4000)),
    );
  }, PROPERTY_TIMEOUT_MS);
});

const MB = 1024 * 1024;
describeSessionFuzz({
  target: pop3Target,
  stream: pop3Stream,
  cases: 3000,
  tlsCases: 500,
  tlsContext: () => createSecureContext({ cert: getTestCertificates().certPem, key: getTestCertificates().keyPem }),
  greeting: /^\+OK /,
  floods: [
    ...commonFloods(),
    { name: 'a SASL exchange fed endless long lines', prefix: Buffer.from('AUTH PLAIN\r\n'), unit: Buffer.concat([Buffer.alloc(8000, 'Q'), Buffer.from('\r\n')]), read: true, minSent: 2 * MB },
    { name: 'commands and never reads a reply', prefix: Buffer.alloc(0), unit: Buffer.from('CAPA\r\n'.repeat(4096)), read: false, minSent: 1 * MB },
  ],
});
