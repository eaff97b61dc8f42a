import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../../src/smtp/dot-stuffing.js';

/** RFC 5321 section 4.5.2 on the whole message at once: a dot at the start of any line (after any LF) is doubled. */
function reference(message: string): string {
  return message.replace(/(^|\n)\./g, '$1..');
}

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

  it('returns the same buffer when there is nothing to stuff', () => {
    const chunk = Buffer.from('no dots at line starts. here\r\n');
    expect(new DotStuffer().stuff(chunk)).toBe(chunk);
  });
});
