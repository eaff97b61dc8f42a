import { getEventListeners, once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RELAY_CLOSE_GRACE_MS, RELAY_WRITE_BATCH_BYTES } from '../../src/limits.js';
import { relay } from '../../src/net/relay.js';
import { tcpPair as pair } from './helpers/tcp-pair.js';

function collect(socket: Socket): { text: () => string; bytes: () => number } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString(), bytes: () => chunks.reduce((n, c) => n + c.length, 0) };
}

/**
 * A stream end whose writes are recorded one entry per write call (a writev is one call), as a
 * socket hands them to the kernel. `push` delivers bytes as if read from the network.
 */
function recordingEnd(): { stream: Duplex; writes: number[]; written: () => Buffer } {
  const chunks: Buffer[] = [];
  const writes: number[] = [];
  const record = (batch: Buffer[]): void => {
    chunks.push(...batch);
    writes.push(batch.reduce((n, c) => n + c.length, 0));
  };
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      record([chunk]);
      callback();
    },
    writev(batch: { chunk: Buffer }[], callback) {
      record(batch.map((b) => b.chunk));
      callback();
    },
  });
  return { stream, writes, written: () => Buffer.concat(chunks) };
}

/** `count` chunks of `size` bytes, each filled with its own letter, so that order shows. */
function records(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, 0x61 + (i % 26)));
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('relay', () => {
  it('writes leftovers first, relays both ways, counts bytes and ends when both sides close', async () => {
    const [client, proxyClientSide] = await pair();
    const [proxyServerSide, server] = await pair();
    const atServer = collect(server);
    const atClient = collect(client);
    const done = relay(proxyClientSide, proxyServerSide, {
      clientLeftover: Buffer.from('b SELECT\r\n'), upstreamLeftover: Buffer.from('* 1 EXISTS\r\n'), idleTimeoutMs: 10_000,
    });
    client.write('c NOOP\r\n');
    server.write('b OK\r\n');
    await new Promise((r) => setTimeout(r, 50));
    expect(atServer.text()).toBe('b SELECT\r\nc NOOP\r\n');
    expect(atClient.text()).toBe('* 1 EXISTS\r\nb OK\r\n');
    server.end('* BYE\r\n');
    const result = await done;
    expect(result).toEqual({ bytesFromClient: 18, bytesFromServer: 25, reason: 'server_closed' });
    expect(atClient.text()).toBe('* 1 EXISTS\r\nb OK\r\n* BYE\r\n');
  });

  it('keeps buffering bounded when the client does not read (backpressure)', async () => {
    const [client, proxyClientSide] = await pair();
    const [proxyServerSide, server] = await pair();
    client.pause();
    const done = relay(proxyClientSide, proxyServerSide, { idleTimeoutMs: 10_000 });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    const total = 32 * 1024 * 1024;
    const pump = async () => {
      while (written < total) {
        written += chunk.length;
        if (!server.write(chunk)) await new Promise((r) => server.once('drain', r));
      }
      server.end();
    };
    const pumping = pump();
    await new Promise((r) => setTimeout(r, 300));
    // The proxy must not have swallowed the stream into memory while the client sleeps.
    expect(proxyClientSide.writableLength).toBeLessThanOrEqual(256 * 1024);
    expect(written).toBeLessThan(total);
    let received = 0;
    client.on('data', (c: Buffer) => (received += c.length));
    client.resume();
    await pumping;
    const result = await done;
    expect(received).toBe(total);
    expect(result.bytesFromServer).toBe(total);
  });

  it('closes both sides after the idle timeout', async () => {
    const [client, proxyClientSide] = await pair();
    const [proxyServerSide, server] = await pair();
    const started = Date.now();
    const result = await relay(proxyClientSide, proxyServerSide, { idleTimeoutMs: 150 });
    expect(result.reason).toBe('idle_timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await new Promise((r) => setTimeout(r, 20));
    expect(client.readableEnded || client.destroyed).toBe(true);
    expect(server.readableEnded || server.destroyed).toBe(true);
  });

  it('ends the server side when the client goes away, and stops on abort', async () => {
    const [client, proxyClientSide] = await pair();
    const [proxyServerSide, server] = await pair();
    const serverEnded = new Promise((r) => server.once('end', r));
    const done = relay(proxyClientSide, proxyServerSide, { idleTimeoutMs: 10_000 });
    client.end();
    await serverEnded;
    server.end();
    expect((await done).reason).toBe('client_closed');

    const [, a] = await pair();
    const [b] = await pair();
    const controller = new AbortController();
    const aborted = relay(a, b, { idleTimeoutMs: 10_000, signal: controller.signal });
    controller.abort();
    expect((await aborted).reason).toBe('aborted');
  });

  it('passes on a FIN that came before it started, after the leftover, and relays the answer to it', async () => {
    // A client that sent `a LOGIN ...\r\nb NOOP\r\n` and its FIN at once: the login's reader
    // took the LOGIN, kept the NOOP as leftover and saw the end of input, all before the relay.
    const [client, proxyClientSide] = await pair({ allowHalfOpen: true });
    const [proxyServerSide, server] = await pair({ allowHalfOpen: true });
    client.end();
    proxyClientSide.resume();
    await once(proxyClientSide, 'end');
    const atServer = collect(server);
    const atClient = collect(client);
    const serverEnded = once(server, 'end');
    const clientClosed = once(client, 'close');
    const done = relay(proxyClientSide, proxyServerSide, { clientLeftover: Buffer.from('b NOOP\r\n'), idleTimeoutMs: 10_000 });
    await serverEnded;
    expect(atServer.text()).toBe('b NOOP\r\n');
    server.end('b OK\r\n');
    expect((await done).reason).toBe('client_closed');
    await clientClosed;
    expect(atClient.text()).toBe('b OK\r\n');
  });

  it('after a FIN, still relays the answer, and ends after RELAY_CLOSE_GRACE_MS of silence, not the idle timeout', async () => {
    const [client, proxyClientSide] = await pair({ allowHalfOpen: true });
    // A server that neither closes at our FIN nor says anything more after its answer.
    const [proxyServerSide, server] = await pair({ allowHalfOpen: true });
    const atClient = collect(client);
    const done = relay(proxyClientSide, proxyServerSide, { idleTimeoutMs: 60_000 });
    client.end();
    await once(server, 'end');
    const started = Date.now();
    server.write('* late answer\r\n');
    const result = await done;
    const elapsed = Date.now() - started;
    expect(result.reason).toBe('client_closed');
    expect(atClient.text()).toBe('* late answer\r\n');
    expect(elapsed).toBeGreaterThanOrEqual(RELAY_CLOSE_GRACE_MS - 100);
    expect(elapsed).toBeLessThan(RELAY_CLOSE_GRACE_MS + 3000);
  });

  it('leaves no listener on a long-lived signal once both sides are closed, and none on the sockets', async () => {
    const shutdown = new AbortController();
    const [client, proxyClientSide] = await pair();
    const [proxyServerSide, server] = await pair();
    const done = relay(proxyClientSide, proxyServerSide, { idleTimeoutMs: 10_000, signal: shutdown.signal });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    // Idle: no drain listener is made until a side is full.
    expect(proxyClientSide.listenerCount('drain') + proxyServerSide.listenerCount('drain')).toBe(0);
    const serverEnded = new Promise((r) => server.once('end', r));
    client.end();
    await serverEnded;
    server.end();
    expect((await done).reason).toBe('client_closed');
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    expect(shutdown.signal.aborted).toBe(false);
  });

  it('writes the records that arrive in one turn in batches of a full TLS record, in order', async () => {
    const client = recordingEnd();
    const server = recordingEnd();
    const done = relay(client.stream, server.stream, { idleTimeoutMs: 10_000 });
    await nextTurn(); // the relay's resume() takes effect
    // Ten 4 kB TLS records decrypted from one socket read: ten 'data' events in one turn.
    const sent = records(10, 4096);
    for (const record of sent) server.stream.push(record);
    expect(client.writes).toEqual([RELAY_WRITE_BATCH_BYTES, RELAY_WRITE_BATCH_BYTES]);
    await nextTurn();
    expect(client.writes).toEqual([RELAY_WRITE_BATCH_BYTES, RELAY_WRITE_BATCH_BYTES, 8192]);
    expect(client.written().equals(Buffer.concat(sent))).toBe(true);

    // What is still held when the server ends goes out before the client's end.
    server.stream.push(Buffer.from('* BYE\r\n'));
    server.stream.push(null);
    await new Promise((r) => client.stream.once('finish', r));
    expect(client.written().subarray(-7).toString()).toBe('* BYE\r\n');
    server.stream.destroy();
    client.stream.destroy();
    expect((await done).bytesFromServer).toBe(10 * 4096 + 7);
  });

  it('gives the client what the server sent in the same turn as its reset before closing', async () => {
    const client = recordingEnd();
    const server = recordingEnd();
    const done = relay(client.stream, server.stream, { idleTimeoutMs: 10_000 });
    await nextTurn();
    const sent = records(2, 4096);
    for (const record of sent) server.stream.push(record);
    server.stream.destroy(new Error('read ECONNRESET'));
    expect((await done).reason).toBe('server_error');
    expect(client.written().equals(Buffer.concat(sent))).toBe(true);
  });
});
