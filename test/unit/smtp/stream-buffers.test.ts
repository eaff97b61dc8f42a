import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { getDefaultHighWaterMark, PassThrough } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP_DATA_BUFFER_BYTES, SMTP_PARSER_BUFFER_BYTES } from '../../../src/limits.js';
import { installStreamBuffers, withHighWaterMark } from '../../../src/smtp/stream-buffers.js';

const NODE_DEFAULT = getDefaultHighWaterMark(false);

/** A parser made by smtp-server's own method, with only the connection fields it reads. */
function newParser(): SMTPStream {
  const connection = { _server: { options: {} } } as unknown as SMTPConnection;
  return SMTPConnection.prototype._createParser.call(connection);
}

describe('installStreamBuffers', () => {
  it("gives smtp-server's parser and DATA stream their room, and no other stream", () => {
    expect(installStreamBuffers()).toBe(true);
    expect(newParser().writableHighWaterMark).toBe(SMTP_PARSER_BUFFER_BYTES);
    const data = new SMTPStream().startDataMode();
    expect(data.writableHighWaterMark).toBe(SMTP_DATA_BUFFER_BYTES);
    expect(data.readableHighWaterMark).toBe(SMTP_DATA_BUFFER_BYTES);
    // Node's default is back, for every stream made anywhere else.
    expect(getDefaultHighWaterMark(false)).toBe(NODE_DEFAULT);
    expect(new PassThrough().writableHighWaterMark).toBe(NODE_DEFAULT);
    expect(new SMTPStream().writableHighWaterMark).toBe(NODE_DEFAULT);
  });

  it('wraps each method once, however often it is installed', () => {
    installStreamBuffers();
    const createParser = SMTPConnection.prototype._createParser;
    const startDataMode = SMTPStream.prototype.startDataMode;
    expect(installStreamBuffers()).toBe(true);
    expect(SMTPConnection.prototype._createParser).toBe(createParser);
    expect(SMTPStream.prototype.startDataMode).toBe(startDataMode);
  });

  it("sets Node's default back when the wrapped method throws", () => {
    const failing = withHighWaterMark(() => {
      expect(getDefaultHighWaterMark(false)).toBe(12_345);
      throw new Error('boom');
    }, 12_345);
    expect(() => failing()).toThrow('boom');
    expect(getDefaultHighWaterMark(false)).toBe(NODE_DEFAULT);
  });
});

describe('a message through smtp-server with the buffers installed', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  it('does not pause the client socket at every read while the consumer keeps up', async () => {
    installStreamBuffers();
    const received: Buffer[] = [];
    const smtp = new SMTPServer({
      logger: false,
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      // Read as transaction.ts reads it: an async iterator, a turn of the event loop per chunk.
      onData(stream, _session, callback) {
        void (async () => {
          for await (const chunk of stream as AsyncIterable<Buffer>) received.push(chunk);
        })().then(() => callback(null), callback);
      },
    });
    const counts = { reads: 0, pauses: 0 };
    const listener = createServer((socket) => {
      socket.on('data', () => counts.reads++);
      const pause = socket.pause.bind(socket);
      socket.pause = () => {
        counts.pauses++;
        return pause();
      };
      smtp.connect(socket);
    });
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    closers.push(() => new Promise((resolve) => listener.close(resolve)));
    closers.push(() => new Promise((resolve) => smtp.close(() => resolve(undefined))));
    const port = (listener.address() as { port: number }).port;

    const client = connect(port, '127.0.0.1');
    closers.push(async () => client.destroy());
    const replies = replyReader(client);
    expect(await replies()).toMatch(/^220 /);
    for (const [command, code] of [['EHLO bench', '250'], ['MAIL FROM:<a@example.com>', '250'], ['RCPT TO:<b@example.com>', '250'], ['DATA', '354']] as const) {
      client.write(`${command}\r\n`);
      expect((await replies()).slice(0, 3)).toBe(code);
    }
    const line = `${'x'.repeat(998)}\r\n`;
    const body = line.repeat(4096); // 4 MB: some 64 reads of 64 kB
    client.write(body);
    client.write('.\r\n');
    expect((await replies()).slice(0, 3)).toBe('250');

    expect(Buffer.concat(received).toString('latin1')).toBe(body);
    expect(counts.reads).toBeGreaterThan(16);
    // Node's default mark (16 or 64 kB) paused the socket after nearly every read.
    expect(counts.pauses).toBeLessThan(counts.reads / 4);
  });
});

/** Reads whole SMTP replies (the last line of a multi-line one decides) from a client socket. */
function replyReader(socket: Socket): () => Promise<string> {
  let buffered = '';
  const waiting: ((reply: string) => void)[] = [];
  const ready: string[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (text: string) => {
    buffered += text;
    for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (line[3] === '-') continue;
      const next = waiting.shift();
      if (next) next(line);
      else ready.push(line);
    }
  });
  return () => {
    const reply = ready.shift();
    return reply !== undefined ? Promise.resolve(reply) : new Promise((resolve) => waiting.push(resolve));
  };
}
