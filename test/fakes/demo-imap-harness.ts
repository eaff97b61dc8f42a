import { afterEach } from 'vitest';
import { startDemoImapServer, type DemoImapServer, type DemoImapServerOptions } from '../../src/demo/imap-server.js';
import { getTestCertificates } from './certs.js';
import { WireClient } from './imap-wire-client.js';

/**
 * The demo IMAP server as a test upstream: started on 127.0.0.1 port 0 with the test CA's
 * "localhost" certificate and a token check that accepts exactly DEMO_USER / DEMO_TOKEN, and
 * closed (with every client a test opened through the harness) after each test.
 */

export const DEMO_USER = 'alice@example.com';
export const DEMO_TOKEN = 'ya29.good-token';
/** The error Gmail (and the demo server) put in the failure challenge of a refused token. */
export const GMAIL_ERROR = { status: '400', schemes: 'Bearer', scope: 'https://mail.google.com/' };

export interface DemoImapHarness {
  /** Starts a server; `tls` defaults to implicit. Closed after the test. */
  start(options?: Partial<DemoImapServerOptions>): Promise<DemoImapServer>;
  /** A line-level client, with implicit TLS verified against the test CA unless `tls` is false. */
  wire(server: DemoImapServer, tls?: boolean): Promise<WireClient>;
  /** Closes `item` after the test (clients, other servers). */
  track<T extends { close(): unknown }>(item: T): T;
}

/** Call once at the top of a test file (it registers an afterEach). */
export function useDemoImap(): DemoImapHarness {
  const certs = getTestCertificates();
  const open: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
  });
  const track = <T extends { close(): unknown }>(item: T): T => {
    open.push(item);
    return item;
  };
  return {
    track,
    start: async (options = {}) =>
      track(
        await startDemoImapServer({
          tls: 'implicit',
          cert: certs.certPem,
          key: certs.keyPem,
          validateToken: (user, token) => user === DEMO_USER && token === DEMO_TOKEN,
          ...options,
        }),
      ),
    wire: async (server, tls = true) =>
      track(await WireClient.connect({ port: server.port, ...(tls ? { tlsCa: certs.caPem } : {}) })),
  };
}

/** Polls `condition` every 10 ms until it holds. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
