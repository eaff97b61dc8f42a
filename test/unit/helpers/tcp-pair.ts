import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach } from 'vitest';

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/**
 * A connected TCP pair on 127.0.0.1: [outer (connecting) end, inner (accepted) end]; closed after
 * each test. `allowHalfOpen` makes the inner end half-open, as the proxy's listeners are.
 */
export async function tcpPair(options: { allowHalfOpen?: boolean } = {}): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const outer = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  await new Promise((r) => outer.once('connect', r));
  const inner = await accepted;
  sockets.push(outer, inner);
  return [outer, inner];
}
