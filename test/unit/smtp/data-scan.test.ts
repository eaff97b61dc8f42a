import { once } from 'node:events';
import fc from 'fast-check';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, expect, it } from 'vitest';
import {
  CHECKED_FEED_DATA_STREAM_SHA256,
  feedDataStreamFast,
  installFastDataScan,
  originalFeedDataStream,
  sourceFingerprint,
} from '../../../src/smtp/data-scan.js';

type Feed = SMTPStream['_feedDataStream'];

interface Parsed {
  /** The body of each DATA, as smtp-server's data stream emitted it (dot-unstuffed). */
  bodies: string[];
  /** dataBytes as each data stream ended. */
  byteCounts: number[];
  /** Every command line, DATA included, in order. */
  commands: string[];
}

/**
 * Drives an SMTPStream the way smtp-server's connection does: a "DATA" command starts data
 * mode, `continue()` is called when the data stream has ended, and commands are answered on a
 * later turn. `feed` is the DATA method
 * the stream uses (set on the instance, so its own recursive calls use it too).
 */
async function parse(chunks: readonly Buffer[], feed: Feed): Promise<Parsed> {
  const parser = new SMTPStream();
  parser._feedDataStream = feed;
  const parsed: Parsed = { bodies: [], byteCounts: [], commands: [] };
  parser.oncommand = (line, next) => {
    const text = line.toString('latin1');
    parsed.commands.push(text);
    if (text === 'DATA') {
      const data = parser.startDataMode();
      const parts: Buffer[] = [];
      data.on('data', (b: Buffer) => parts.push(b));
      data.on('end', () => {
        parsed.bodies.push(Buffer.concat(parts).toString('latin1'));
        parsed.byteCounts.push(parser.dataBytes);
        parser.continue();
      });
    }
    // On a later turn, as our asynchronous hooks answer: smtp-server's continue() drops the
    // continuation of a handler that re-enters it synchronously (a harness artefact otherwise).
    if (next) setImmediate(next);
  };
  for (const chunk of chunks) {
    if (!parser.write(chunk)) await once(parser, 'drain');
  }
  parser.end();
  await once(parser, 'finish');
  // The last continuation may still be waiting on a setImmediate of the original method.
  await new Promise((resolve) => setImmediate(resolve));
  return parsed;
}

/** Cuts `bytes` at the given offsets (any order, duplicates allowed). */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const at of points) {
    if (at > from) chunks.push(bytes.subarray(from, at));
    from = Math.max(from, at);
  }
  if (from < bytes.length) chunks.push(bytes.subarray(from));
  return chunks;
}

/** Session text with dots, CR and LF where they matter: line starts, stuffed dots, bare LFs, early ends. */
const piece = fc.constantFrom('.', '..', '\r\n', '\n', '\r', '\r\n.', '\r\n..', '\r\n.\r\n', 'a', 'bc', '.\r\n', 'DATA\r\n', 'QUIT\r\n', 'x'.repeat(40));
const session = fc
  .array(fc.array(piece, { maxLength: 60 }).map((parts) => parts.join('')), { minLength: 1, maxLength: 3 })
  .map((bodies) => bodies.map((body) => `MAIL FROM:<a@b>\r\nDATA\r\n${body}\r\n.\r\n`).join('') + 'NOOP\r\n');

describe('the faster DATA scan in front of smtp-server', () => {
  it('is installed on the smtp-server release in the lockfile (re-check data-scan.ts when this fails)', () => {
    expect(sourceFingerprint(originalFeedDataStream)).toBe(CHECKED_FEED_DATA_STREAM_SHA256);
    expect(installFastDataScan()).toBe(true);
    expect(SMTPStream.prototype._feedDataStream).toBe(feedDataStreamFast);
    expect(installFastDataScan()).toBe(true);
  });

  it('parses every session exactly as smtp-server does, however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(session, fc.array(fc.nat(), { maxLength: 12 }), async (text, offsets) => {
        const chunks = cut(Buffer.from(text, 'latin1'), offsets);
        const theirs = await parse(chunks, originalFeedDataStream);
        const ours = await parse(chunks, feedDataStreamFast);
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps the message, its byte count and the commands after it on a 1 MB body in 64 kB reads', async () => {
    const line = 'The quick brown fox jumps over the lazy dog. 0123456789\r\n';
    const body = `${line.repeat(9000)}..stuffed\r\n${line.repeat(9000)}`;
    const text = Buffer.from(`DATA\r\n${body}\r\n.\r\nQUIT\r\n`, 'latin1');
    const chunks = cut(text, Array.from({ length: Math.ceil(text.length / 65536) }, (_, i) => i * 65536));
    const ours = await parse(chunks, feedDataStreamFast);
    expect(ours).toEqual(await parse(chunks, originalFeedDataStream));
    expect(ours.bodies).toEqual([`${line.repeat(9000)}.stuffed\r\n${line.repeat(9000)}\r\n`]);
    expect(ours.commands).toEqual(['DATA', 'QUIT']);
  });

  it('leaves a different smtp-server method alone', () => {
    const proto = SMTPStream.prototype;
    const installed = proto._feedDataStream;
    const other: Feed = function changed(this: SMTPStream, chunk, done) {
      originalFeedDataStream.call(this, chunk, done);
    };
    proto._feedDataStream = other;
    try {
      expect(installFastDataScan()).toBe(false);
      expect(proto._feedDataStream).toBe(other);
    } finally {
      proto._feedDataStream = installed;
    }
  });
});
