import { randomInt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotStuffer, indexOfLfDot } from '../../../src/smtp/dot-stuffing.js';
import { fuzzParams, runs } from '../../fuzz/bytes.js';

/** RFC 5321 section 4.5.2 on the whole message at once: a dot at the start of any line (after any LF) is doubled. */
function reference(message: string): string {
  return message.replace(/(^|\n)\./g, '$1..');
}

/** The same rule byte by byte, written as plainly as possible to check the searching implementation against. */
function referenceBytes(message: Buffer): Buffer {
  const out: number[] = [];
  message.forEach((byte, i) => {
    if (byte === 0x2e && (i === 0 || message[i - 1] === 0x0a)) out.push(0x2e);
    out.push(byte);
  });
  return Buffer.from(out);
}

/** Messages dense in what matters (dots, CR, LF, and the pairs between them), with some other bytes. */
const denseMessage = fc
  .array(fc.constantFrom('.', '.', '\n', '\r', '\r\n', '\n.', '\r\n.', '..', 'a', 'xyz', '\x00', '\xff'), { maxLength: 80 })
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

/** Cut points, repeats allowed, so some chunks are empty. */
const cutPoints = fc.array(fc.nat(), { maxLength: 10 });

function stuffInChunks(message: Buffer, cuts: number[]): { out: string; atLineStart: boolean } {
  const stuffer = new DotStuffer();
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, message.length]) {
    parts.push(stuffer.stuff(message.subarray(from, cut)));
    from = cut;
  }
  return { out: Buffer.concat(parts).toString('latin1'), atLineStart: stuffer.atLineStart };
}

describe('DotStuffer', () => {
  it('doubles line-initial dots, at the start, after CRLF and after a bare LF', () => {
    const { out } = stuffInChunks(Buffer.from('.one\r\ntwo\r\n..three\n.four\r\n.\r\nfive.\r\n'), []);
    expect(out).toBe('..one\r\ntwo\r\n...three\n..four\r\n..\r\nfive.\r\n');
  });

  it('carries the line start across chunk boundaries (a cut between LF and dot, or before the first dot)', () => {
    const message = Buffer.from('a\r\n.b\r\n.c');
    expect(stuffInChunks(message, [3]).out).toBe('a\r\n..b\r\n..c');
    expect(stuffInChunks(message, [2, 3, 7, 8]).out).toBe('a\r\n..b\r\n..c');
    expect(stuffInChunks(Buffer.from('.x'), [0, 0, 1]).out).toBe('..x');
  });

  it('matches the whole-message transform for random messages cut at random places', () => {
    const alphabet = ['.', '.', '\r\n', '\n', 'a', 'bc', '\r'];
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: randomInt(0, 60) }, () => alphabet[randomInt(alphabet.length)]).join('');
      const message = Buffer.from(text, 'latin1');
      const cuts = Array.from({ length: randomInt(0, 6) }, () => randomInt(0, message.length + 1)).sort((x, y) => x - y);
      const { out, atLineStart } = stuffInChunks(message, cuts);
      expect(out).toBe(reference(text));
      expect(atLineStart).toBe(text.length === 0 || text.endsWith('\n'));
    }
  });

  it('property: any chunking gives the byte-by-byte reference output; a chunk comes back as is exactly when it has no dot to double', () => {
    fc.assert(
      fc.property(denseMessage, cutPoints, (message, rawCuts) => {
        const cuts = rawCuts.map((c) => c % (message.length + 1)).sort((x, y) => x - y);
        const stuffer = new DotStuffer();
        const outputs: Buffer[] = [];
        let from = 0;
        for (const cut of [...cuts, message.length]) {
          const chunk = message.subarray(from, cut);
          const out = stuffer.stuff(chunk);
          expect(out === chunk).toBe(out.length === chunk.length);
          outputs.push(out);
          from = cut;
        }
        expect(Buffer.concat(outputs).equals(referenceBytes(message))).toBe(true);
        expect(stuffer.atLineStart).toBe(message.length === 0 || message[message.length - 1] === 0x0a);
      }),
      fuzzParams(runs(3000)),
    );
  });

  it('returns the same buffer when there is nothing to stuff', () => {
    const chunk = Buffer.from('no dots at line starts. here\r\n');
    expect(new DotStuffer().stuff(chunk)).toBe(chunk);
  });
});

describe('indexOfLfDot', () => {
  it('property: finds the first LF followed by a dot at or after `from`, as a two-byte search does', () => {
    fc.assert(
      fc.property(denseMessage, fc.nat(), (bytes, rawFrom) => {
        const from = rawFrom % (bytes.length + 1);
        expect(indexOfLfDot(bytes, from)).toBe(bytes.indexOf('\n.', from));
      }),
      fuzzParams(runs(3000)),
    );
  });

  it('skips dots that do not start a line and finds none in a chunk without dots', () => {
    expect(indexOfLfDot(Buffer.from('a.b.c\r\n.d'))).toBe(6);
    expect(indexOfLfDot(Buffer.from('.a\r\nb.'))).toBe(-1);
    expect(indexOfLfDot(Buffer.from('QUJD\r\nREVG\r\n'))).toBe(-1);
  });
});
