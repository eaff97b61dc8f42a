import { once } from 'node:events';
import { createServer } from 'node:net';
import { getDefaultHighWaterMark, PassThrough } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP_DATA_BUFFER_BYTES, SMTP_PARSER_BUFFER_BYTES } from '../../../src/limits.js';
import { SmtpWireClient } from '../../fakes/smtp-wire-client.js';
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

    const client = await SmtpWireClient.open({ port });
    closers.push(async () => client.close());
    for (const [command, code] of [['EHLO bench', 250], ['MAIL FROM:<a@example.com>', 250], ['RCPT TO:<b@example.com>', 250]] as const) {
      expect((await client.command(command)).code).toBe(code);
    }
    const line = `${'x'.repeat(998)}\r\n`;
    const body = line.repeat(4096); // 4 MB: some 64 reads of 64 kB
    const { start, end } = await client.data(body);
    expect(start.code).toBe(354);
    expect(end.code).toBe(250);

    expect(Buffer.concat(received).toString('latin1')).toBe(body);
    expect(counts.reads).toBeGreaterThan(16);
    // Node's default mark (16 or 64 kB) paused the socket after nearly every read.
    expect(counts.pauses).toBeLessThan(counts.reads / 4);
  });
});
