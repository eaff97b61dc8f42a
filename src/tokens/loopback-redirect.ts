import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * RFC 8252 section 7.3: a native app receives the authorization response on a loopback port of
 * its own. `oauth-mail-proxy auth` opens one on 127.0.0.1 (the IP literal, not "localhost",
 * section 8.3) for the length of one sign-in; only GET /oauth/callback is answered.
 */

export const CALLBACK_PATH = '/oauth/callback';
const CLOSE_GRACE_MS = 1_000;

export interface CallbackAnswer {
  status: number;
  html: string;
}

export interface RedirectListener {
  /** The redirect_uri to send in the authorization request. */
  redirectUri: string;
  close(): Promise<void>;
}

export interface RedirectListenerOptions {
  /** 0 (default) picks a free port; Google and Microsoft accept any port on loopback. */
  port?: number | undefined;
  /** Gets the callback's query; its answer is what the browser shows. */
  handle(params: URLSearchParams): Promise<CallbackAnswer>;
}

export async function startRedirectListener(options: RedirectListenerOptions): Promise<RedirectListener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    options.handle(url.searchParams).then(
      (answer) => res.writeHead(answer.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(answer.html),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('sign-in failed; see the terminal\n'),
    );
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    redirectUri: `http://127.0.0.1:${port}${CALLBACK_PATH}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Let the last answer page reach the browser; then cut whatever keep-alive is left.
      server.closeIdleConnections();
      const cut = setTimeout(() => sockets.forEach((s) => s.destroy()), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(cut);
    },
  };
}
