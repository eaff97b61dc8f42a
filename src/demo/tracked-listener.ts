import type { AddressInfo, Server, Socket } from 'node:net';

/** A demo server's listening socket and the connections it has open. */
export interface TrackedListener {
  readonly host: string;
  readonly port: number;
  /** Destroys every open connection without a goodbye, as a crashing or restarting server would. */
  dropConnections(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/**
 * Starts `server` on `host`:`port` (127.0.0.1 and a free port by default) and keeps track of its
 * connections, so that the demo IMAP and POP3 servers can drop them or close for good.
 * `onConnection` runs for each one (their counters).
 */
export async function listenTracked(server: Server, options: { host?: string | undefined; port?: number | undefined }, onConnection: () => void): Promise<TrackedListener> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    onConnection();
    sockets.add(socket);
    // Responses go out in several writes (untagged lines, then the tagged one); without this,
    // Nagle's algorithm and delayed ACKs add ~40 ms to many commands.
    socket.setNoDelay(true);
    // The raw socket outlives its reader after STARTTLS; errors on it must never crash the process.
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const dropConnections = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    host: address.address,
    port: address.port,
    dropConnections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        dropConnections();
      }),
  };
}
