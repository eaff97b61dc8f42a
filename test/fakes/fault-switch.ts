import { createServer, connect, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * A TCP middlebox between the proxy and one of its upstreams (the identity provider or a mail
 * server) that misbehaves on demand, so that a test can put a fault exactly where it wants it:
 *
 * - `pass`: a transparent pipe.
 * - `refuse`: nothing listens on the port (connection refused).
 * - `reset`: the connection is reset as soon as the client has said something (during TLS, the
 *   ClientHello).
 * - `hang`: accepted, read, never answered.
 * - `truncate`: piped, but the answer is cut `truncateAfterBody` bytes into its body (after the
 *   first empty line) and the connection dropped: an HTTP response that ends mid-body.
 * - `bad_cert`: TLS is answered here, with a certificate nobody trusts.
 *
 * `dropAll()` cuts every piped connection at once (a server that goes away mid-relay); so does
 * every change of mode, so that no kept-alive connection carries on in the old one.
 */
export type FaultMode = 'pass' | 'refuse' | 'reset' | 'hang' | 'truncate' | 'bad_cert';

export interface FaultSwitch {
  readonly port: number;
  readonly mode: FaultMode;
  setMode(mode: FaultMode): Promise<void>;
  /** Connections accepted, in any mode. */
  readonly connections: number;
  dropAll(): void;
  close(): Promise<void>;
}

export interface FaultSwitchOptions {
  targetPort: number;
  /** For `bad_cert`. */
  untrusted?: { certPem: string; keyPem: string };
  truncateAfterBody?: number;
}

export async function startFaultSwitch(options: FaultSwitchOptions): Promise<FaultSwitch> {
  let mode: FaultMode = 'pass';
  let connections = 0;
  const open = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const track = (s: Socket): Socket => {
    open.add(s);
    s.on('error', () => undefined);
    s.once('close', () => open.delete(s));
    return s;
  };

  function onConnection(client: Socket): void {
    connections++;
    track(client);
    switch (mode) {
      case 'reset':
        client.once('data', () => client.resetAndDestroy());
        return;
      case 'hang':
        client.resume();
        return;
      case 'bad_cert': {
        const tls = new TLSSocket(client, { isServer: true, cert: options.untrusted?.certPem, key: options.untrusted?.keyPem });
        track(tls);
        return;
      }
      default:
        pipe(client);
    }
  }

  function pipe(client: Socket): void {
    const upstream = track(connect({ host: '127.0.0.1', port: options.targetPort }));
    client.pipe(upstream);
    if (mode !== 'truncate') {
      upstream.pipe(client);
    } else {
      let seen = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        const headerEnd = seen.indexOf('\r\n\r\n');
        if (headerEnd === -1) return;
        client.write(seen.subarray(0, headerEnd + 4 + (options.truncateAfterBody ?? 10)));
        upstream.destroy();
        client.destroy();
      });
    }
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  }

  async function listen(): Promise<void> {
    server = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as { port: number }).port;
  }

  async function stopListening(): Promise<void> {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  await listen();
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    get connections() {
      return connections;
    },
    async setMode(next) {
      // Kept-alive connections from before would carry on in the old mode.
      for (const s of open) s.destroy();
      if (next === 'refuse' && server) await stopListening();
      if (next !== 'refuse' && !server) await listen();
      mode = next;
    },
    dropAll() {
      for (const s of open) s.destroy();
    },
    async close() {
      for (const s of open) s.destroy();
      await stopListening();
    },
  };
}
