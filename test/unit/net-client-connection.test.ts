import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientConnection } from '../../src/net/client-connection.js';

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A connected TCP pair: [client end, server end]. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  await new Promise((r) => client.once('connect', r));
  const inner = await accepted;
  sockets.push(client, inner);
  return [client, inner];
}

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
