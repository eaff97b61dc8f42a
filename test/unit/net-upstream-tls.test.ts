import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as tlsConnect, createSecureContext, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { UpstreamServer } from '../../src/config/resolve.js';
import { ProxyError } from '../../src/errors.js';
import { UPSTREAM_CA_FILE_RECHECK_MS, UPSTREAM_TLS_DECLINES_BEFORE_PAUSE, UPSTREAM_TLS_RESUME_PAUSE_MS } from '../../src/limits.js';
import { TlsSessionCache, tlsSessionKey } from '../../src/net/tls-sessions.js';
import { connectUpstream } from '../../src/net/upstream.js';
import { getTestCertificates } from '../fakes/certs.js';

const certs = getTestCertificates();
let server: Server;
let port = 0;
let dir = '';

beforeAll(async () => {
  // A greeting, as mail servers send one: TLS 1.3 session tickets go out with the first write.
  server = createServer({ cert: certs.certPem, key: certs.keyPem }, (socket) => socket.end('* OK ready\r\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  dir = mkdtempSync(join(tmpdir(), 'omp-upstream-tls-'));
});

afterEach(() => {
  vi.useRealTimers();
});

/** Moves the clock past the CA file's recheck period (only Date is faked: sockets keep working). */
function laterThanRecheck(): void {
  vi.setSystemTime(Date.now() + UPSTREAM_CA_FILE_RECHECK_MS + 1000);
}

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function upstream(caFile: string): UpstreamServer {
  return { host: 'localhost', port, tls: 'implicit', caFile, insecureSkipVerify: false };
}

async function connectOnce(caFile: string): Promise<void> {
  const socket = await connectUpstream(upstream(caFile), AbortSignal.timeout(5000));
  socket.destroy();
}

describe('upstream TLS trust (one SecureContext per CA file)', () => {
  it('verifies every connection against the CA file, and picks up a changed file after the recheck period', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const caFile = join(dir, 'ca.pem');
    copyFileSync(certs.caFile, caFile);
    await connectOnce(caFile);
    await connectOnce(caFile);
    // The file now names a CA that did not sign the server's certificate: still trusted until
    // the file is read again, refused after that.
    copyFileSync(certs.untrustedCert.certFile, caFile);
    await connectOnce(caFile);
    laterThanRecheck();
    const refused = await connectOnce(caFile).then(() => undefined, (err: unknown) => err);
    expect(refused).toBeInstanceOf(ProxyError);
    expect((refused as ProxyError).code).toBe('upstream_unavailable');
    copyFileSync(certs.caFile, caFile);
    laterThanRecheck();
    await connectOnce(caFile);
  });

  it('names the file when it cannot be read, and retries it on the next connection', async () => {
    const caFile = join(dir, 'later.pem');
    await expect(connectOnce(caFile)).rejects.toThrow(/cannot read ca_file .*later\.pem/);
    copyFileSync(certs.caFile, caFile);
    await connectOnce(caFile);
  });
});

describe('upstream TLS session resumption', () => {
  /** Connects, waits for the server to hang up (its session tickets arrive first), says whether the session was resumed. */
  async function resumed(server: UpstreamServer): Promise<boolean> {
    const socket = await connectUpstream(server, AbortSignal.timeout(5000));
    const reused = (socket as TLSSocket).isSessionReused();
    await new Promise((resolve) => socket.once('close', resolve).resume());
    return reused;
  }

  it('resumes the session of a verified connection on the next one, and not after the trust changed', async () => {
    const caFile = join(dir, 'resume-ca.pem');
    copyFileSync(certs.caFile, caFile);
    expect(await resumed(upstream(caFile))).toBe(false);
    expect(await resumed(upstream(caFile))).toBe(true);
    expect(await resumed(upstream(caFile))).toBe(true);
    // Another name to check is another key: a full handshake.
    expect(await resumed({ ...upstream(caFile), host: '127.0.0.1', servername: 'localhost' })).toBe(false);
    // A new ca_file (same text plus another CA) is a new SecureContext: no session crosses over.
    vi.useFakeTimers({ toFake: ['Date'] });
    writeFileSync(caFile, `${readFileSync(certs.caFile, 'utf8')}\n${readFileSync(certs.untrustedCert.certFile, 'utf8')}`);
    laterThanRecheck();
    expect(await resumed(upstream(caFile))).toBe(false);
    expect(await resumed(upstream(caFile))).toBe(true);
  });

  it('never offers a session from a connection made without verification to a verified one', async () => {
    const caFile = join(dir, 'resume-insecure-ca.pem');
    copyFileSync(certs.caFile, caFile);
    const insecure = { ...upstream(caFile), insecureSkipVerify: true };
    expect(await resumed(insecure)).toBe(false);
    expect(await resumed(insecure)).toBe(true);
    expect(await resumed(upstream(caFile))).toBe(false);
  });
});

describe('TlsSessionCache with a server that declines resumption', () => {
  it('stops offering sessions after three declines in a row, and offers again after the pause', async () => {
    // A new ticket key after every connection: each ticket it handed out is useless next time.
    let rotations = 0;
    let made = 0;
    const rotating = createServer({ cert: certs.certPem, key: certs.keyPem }, (socket) => {
      socket.end('* OK ready\r\n');
      socket.once('close', () => {
        rotating.setTicketKeys(randomBytes(48));
        rotations++;
      });
    });
    await new Promise<void>((resolve) => rotating.listen(0, '127.0.0.1', resolve));
    let now = 1_000_000;
    const cache = new TlsSessionCache(() => now);
    const context = createSecureContext({ ca: certs.caPem });
    const key = tlsSessionKey('127.0.0.1', (rotating.address() as { port: number }).port, 'localhost', true);
    const connectOnce = async (): Promise<{ offered: boolean; reused: boolean }> => {
      const session = cache.get(context, key);
      const socket = tlsConnect({ host: '127.0.0.1', port: (rotating.address() as { port: number }).port, servername: 'localhost', secureContext: context, ...(session ? { session } : {}) });
      cache.remember(socket, context, key, session !== undefined);
      await once(socket, 'secureConnect');
      const reused = socket.isSessionReused();
      await new Promise((resolve) => socket.once('close', resolve).resume());
      // The server rotates its key when its side has closed: wait for that before the next offer.
      made++;
      while (rotations < made) await new Promise((resolve) => setTimeout(resolve, 5));
      return { offered: session !== undefined, reused };
    };
    try {
      expect(await connectOnce()).toEqual({ offered: false, reused: false });
      for (let i = 0; i < UPSTREAM_TLS_DECLINES_BEFORE_PAUSE; i++) expect(await connectOnce()).toEqual({ offered: true, reused: false });
      expect(await connectOnce()).toEqual({ offered: false, reused: false });
      expect(await connectOnce()).toEqual({ offered: false, reused: false });
      now += UPSTREAM_TLS_RESUME_PAUSE_MS + 1;
      expect(await connectOnce()).toEqual({ offered: false, reused: false }); // collects a ticket again
      expect(await connectOnce()).toEqual({ offered: true, reused: false });
    } finally {
      await new Promise((resolve) => rotating.close(resolve));
    }
  });
});
