import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LineReader, type LineResult } from '../../src/net/line-reader.js';

const text = (r: LineResult) => (r.kind === 'line' ? r.line.toString('latin1') : r.kind);

describe('LineReader', () => {
  it('reads CRLF lines (and bare LF) without their terminators, then eof', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 100 });
    stream.end('a NOOP\r\nb CAPABILITY\nc\r\n\r\n');
    const lines = [];
    for (let i = 0; i < 5; i++) lines.push(text(await reader.readLine()));
    expect(lines).toEqual(['a NOOP', 'b CAPABILITY', 'c', '', 'eof']);
  });

  it('gives the same lines and literals however the input is split', async () => {
    const input = Buffer.from('a LOGIN {5}\r\nal\r\nc "pw"\r\nb NOOP\r\nrest');
    for (let split = 0; split <= input.length; split++) {
      const stream = new PassThrough();
      const reader = new LineReader(stream, { maxLineBytes: 64 });
      const got: string[] = [];
      const done = (async () => {
        got.push(text(await reader.readLine()));
        got.push((await reader.readBytes(5))?.toString('latin1') ?? 'eof');
        got.push(text(await reader.readLine()));
        got.push(text(await reader.readLine()));
      })();
      stream.write(input.subarray(0, split));
      await tick();
      stream.write(input.subarray(split));
      await done;
      expect(got, `split at ${split}`).toEqual(['a LOGIN {5}', 'al\r\nc', ' "pw"', 'b NOOP']);
      // What the reader did not pull in is still in the stream: together nothing is lost.
      const leftover = reader.takeLeftover();
      const unread = (stream.read() as Buffer | null) ?? Buffer.alloc(0);
      expect(Buffer.concat([leftover, unread]).toString(), `split at ${split}`).toBe('rest');
    }
  });

  it('reads byte by byte', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 64 });
    const pending = reader.readLine();
    for (const byte of Buffer.from('x1 NOOP\r\n')) {
      stream.write(Buffer.from([byte]));
      await tick();
    }
    expect(text(await pending)).toBe('x1 NOOP');
  });

  it('accepts a line of exactly the limit and refuses one byte more', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 10 });
    stream.write(`${'a'.repeat(10)}\r\n${'b'.repeat(11)}\r\nnext\r\n`);
    expect(text(await reader.readLine())).toBe('a'.repeat(10));
    const tooLong = await reader.readLine();
    expect(tooLong.kind).toBe('too_long');
    // The rest of the over-long line is skipped, then reading goes on.
    expect(text(await reader.readLine())).toBe('next');
  });

  it('does not buffer an endless line: it answers too_long and stays paused', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 100 });
    const chunk = Buffer.alloc(1000, 0x61);
    for (let i = 0; i < 50; i++) stream.write(chunk);
    const result = await reader.readLine();
    expect(result).toMatchObject({ kind: 'too_long' });
    expect(result.kind === 'too_long' && result.head.length).toBe(64);
    expect(reader.buffered).toBeLessThanOrEqual(100 + chunk.length);
    expect(stream.readableFlowing).toBe(false);
    // Skipping the rest reads on without keeping it.
    stream.write('\r\nok\r\n');
    expect(text(await reader.readLine())).toBe('ok');
    expect(reader.buffered).toBe(0);
  });

  it('gives back buffered bytes as leftover, and the stream keeps the rest', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 100 });
    stream.write('a LOGIN x y\r\nb SELECT INBOX\r\n');
    expect(text(await reader.readLine())).toBe('a LOGIN x y');
    stream.write('c NOOP\r\n');
    const leftover = reader.takeLeftover();
    const after: Buffer[] = [];
    stream.on('data', (c: Buffer) => after.push(c));
    stream.resume();
    await tick();
    expect(Buffer.concat([leftover, ...after]).toString()).toBe('b SELECT INBOX\r\nc NOOP\r\n');
  });

  it('returns undefined from readBytes at end of stream', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 100 });
    stream.end('abc');
    expect(await reader.readBytes(5)).toBeUndefined();
  });

  it('rejects with the signal reason when aborted while waiting', async () => {
    const stream = new PassThrough();
    const reader = new LineReader(stream, { maxLineBytes: 100 });
    const controller = new AbortController();
    const pending = reader.readLine(controller.signal);
    const reason = new Error('deadline');
    controller.abort(reason);
    await expect(pending).rejects.toMatchObject({ code: 'aborted' });
    stream.write('late\r\n');
    expect(text(await reader.readLine())).toBe('late');
  });

  it('drops every buffered byte on discardAndDetach (STARTTLS) and reads the new socket', async () => {
    const plain = new PassThrough();
    const reader = new LineReader(plain, { maxLineBytes: 100 });
    plain.write('s STARTTLS\r\nx LOGIN injected pw\r\n');
    expect(text(await reader.readLine())).toBe('s STARTTLS');
    plain.write('y more injected\r\n');
    await tick();
    expect(reader.discardAndDetach()).toBe('x LOGIN injected pw\r\n'.length + 'y more injected\r\n'.length);
    expect(plain.readableLength).toBe(0);
    const secure = new PassThrough();
    reader.attach(secure);
    secure.write('z CAPABILITY\r\n');
    expect(text(await reader.readLine())).toBe('z CAPABILITY');
    plain.write('w ignored\r\n');
    expect(reader.buffered).toBe(0);
  });
});
