import { describe, expect, it } from 'vitest';
import { ClientConnection } from '../../src/net/client-connection.js';
import { tcpPair as pair } from './helpers/tcp-pair.js';

describe('ClientConnection.handOver', () => {
  it('gives the relay what was read ahead, then lets go of the reader and the closed signal', async () => {
    const [client, inner] = await pair();
    const conn = new ClientConnection(inner, 1024);
    client.write('a LOGIN x y\r\nb SELECT INBOX\r\n');
    const first = await conn.reader.readLine();
    expect(first.kind === 'line' && first.line.toString()).toBe('a LOGIN x y');
    const closedBefore = conn.closed;
    expect(conn.handOver().toString()).toBe('b SELECT INBOX\r\n');
    expect(() => conn.reader).toThrow(/handed over/);
    // A signal made after the hand-over still aborts when the client goes.
    const closedAfter = conn.closed;
    expect(closedAfter).not.toBe(closedBefore);
    const closing = conn.close();
    client.end();
    await closing;
    expect(closedAfter.aborted).toBe(true);
  });
});
