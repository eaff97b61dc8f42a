import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_CERT_RECHECK_MS } from '../../src/limits.js';
import { ListenerSet } from '../../src/listener-set.js';
import { startListener } from '../../src/net/listener.js';
import { LocalTls, ensureSelfSignedCertificate, type CertificateRecheck } from '../../src/net/local-tls.js';
import { captureLog, listenerConfig } from './helpers/imap-kit.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-tls-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Handshakes a client limited to `version` with an implicit-TLS listener using `context`. */
async function handshake(context: SecureContext, ca: string, version: 'TLSv1' | 'TLSv1.2'): Promise<string> {
  const listener = await startListener(listenerConfig({ tls: 'implicit' }), async (socket) => {
    socket.end();
  }, { log: captureLog().log, tls: { context } });
  try {
    return await new Promise<string>((resolve, reject) => {
      const options = { host: '127.0.0.1', port: listener.address().port, ca, servername: 'localhost', minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' };
      const socket = tlsConnect(options, () => {
        resolve(socket.getProtocol() ?? '');
        socket.destroy();
      });
      socket.once('error', reject);
    });
  } finally {
    await listener.close(100);
  }
}

/** The SHA-256 fingerprint of the certificate an implicit-TLS listener using `context` presents. */
async function presented(context: SecureContext): Promise<string> {
  const listener = await startListener(listenerConfig({ tls: 'implicit' }), async (socket) => {
    socket.end();
  }, { log: captureLog().log, tls: { context } });
  try {
    return await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: listener.address().port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      });
      socket.once('error', reject);
    });
  } finally {
    await listener.close(100);
  }
}

async function fingerprintOf(certFile: string): Promise<string> {
  return new X509Certificate(await readFile(certFile)).fingerprint256;
}

describe('local TLS', () => {
  it('generates a self-signed localhost pair once, key mode 0600, and reuses it', async () => {
    const folder = join(dir, 'state');
    const first = await ensureSelfSignedCertificate(folder);
    expect((await stat(first.keyFile)).mode & 0o777).toBe(0o600);
    const pem = await readFile(first.certFile, 'utf8');
    expect(pem).toContain('BEGIN CERTIFICATE');
    const second = await ensureSelfSignedCertificate(folder);
    expect(await readFile(second.certFile, 'utf8')).toBe(pem);
  });

  it('honours min_tls_version, allowing TLS 1.0 with legacy ciphers only when asked', async () => {
    const folder = join(dir, 'versions');
    const { certFile } = await ensureSelfSignedCertificate(folder);
    const ca = await readFile(certFile, 'utf8');
    const modern = (await LocalTls.open(listenerConfig({ tls: 'implicit' }), folder)).context;
    expect(await handshake(modern, ca, 'TLSv1.2')).toBe('TLSv1.2');
    await expect(handshake(modern, ca, 'TLSv1')).rejects.toThrow();
    const legacy = (await LocalTls.open(listenerConfig({ tls: 'implicit', min_tls_version: 'TLSv1' }), folder)).context;
    expect(await handshake(legacy, ca, 'TLSv1')).toBe('TLSv1');
  });

  it('uses configured cert_file/key_file and names them when they are unreadable', async () => {
    const { certFile, keyFile } = await ensureSelfSignedCertificate(join(dir, 'own'));
    await expect(LocalTls.open(listenerConfig({ tls: 'implicit', cert_file: certFile, key_file: keyFile }), join(dir, 'unused'))).resolves.toBeDefined();
    await expect(LocalTls.open(listenerConfig({ tls: 'implicit', cert_file: '/nonexistent.pem', key_file: keyFile }), dir))
      .rejects.toMatchObject({ code: 'config_invalid', message: expect.stringContaining('/nonexistent.pem') });
  });
});

describe('a certificate renewed without a SIGHUP', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is read again at the first handshake a minute after the last read and served from then on; a broken pair is refused', async () => {
    const [a, b] = await Promise.all([ensureSelfSignedCertificate(join(dir, 'pair-a')), ensureSelfSignedCertificate(join(dir, 'pair-b'))]);
    const folder = join(dir, 'served');
    await mkdir(folder, { recursive: true });
    const served = { certFile: join(folder, 'cert.pem'), keyFile: join(folder, 'key.pem') };
    const install = (cert: string, key: string): Promise<unknown> => Promise.all([copyFile(cert, served.certFile), copyFile(key, served.keyFile)]);
    await install(a.certFile, a.keyFile);
    vi.useFakeTimers({ toFake: ['Date'] });
    const tls = await LocalTls.open(listenerConfig({ tls: 'implicit', cert_file: served.certFile, key_file: served.keyFile }), folder);
    const outcomes: CertificateRecheck[] = [];
    tls.onRecheck = (outcome) => outcomes.push(outcome);
    const first = tls.context;
    expect(await presented(first)).toBe(await fingerprintOf(a.certFile));

    // Renewed in place, as certbot or a mounted secret does it: nothing is read before the minute is up.
    await install(b.certFile, b.keyFile);
    vi.setSystemTime(Date.now() + LOCAL_CERT_RECHECK_MS - 1_000);
    expect(tls.context).toBe(first);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outcomes).toEqual([]);
    // Then the handshake that finds the read too old still gets the pair in use, and starts the read.
    vi.setSystemTime(Date.now() + 1_000);
    expect(tls.context).toBe(first);
    await vi.waitFor(() => expect(outcomes).toEqual([{ renewed: true }]));
    expect(await presented(tls.context)).toBe(await fingerprintOf(b.certFile));

    // Half a renewal (the new certificate, the old key) is refused; the renewed pair stays in use.
    const renewed = tls.context;
    await copyFile(a.certFile, served.certFile);
    vi.setSystemTime(Date.now() + LOCAL_CERT_RECHECK_MS);
    void tls.context;
    await vi.waitFor(() => expect(outcomes).toHaveLength(2));
    expect(outcomes[1]).toMatchObject({ renewed: false });
    expect(String((outcomes[1] as { error: unknown }).error)).toContain(served.certFile);
    expect(tls.context).toBe(renewed);
    // Not read again at every handshake while broken: once per interval.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outcomes).toHaveLength(2);
  });

  it('is logged by the listener set like a renewal found by SIGHUP', async () => {
    const [a, b] = await Promise.all([ensureSelfSignedCertificate(join(dir, 'pair-a')), ensureSelfSignedCertificate(join(dir, 'pair-b'))]);
    const folder = join(dir, 'logged');
    await mkdir(folder, { recursive: true });
    const certFile = join(folder, 'cert.pem');
    const keyFile = join(folder, 'key.pem');
    await Promise.all([copyFile(a.certFile, certFile), copyFile(a.keyFile, keyFile)]);
    vi.useFakeTimers({ toFake: ['Date'] });
    const config = listenerConfig({ tls: 'implicit', cert_file: certFile, key_file: keyFile });
    const captured = captureLog();
    const { log } = captured;
    const set = new ListenerSet(async (c) => {
      const tls = await LocalTls.open(c, folder);
      return { listener: await startListener(c, async (socket) => void socket.end(), { log, tls }), tls };
    }, log);
    await set.startAll([config]);
    try {
      const [running] = set.running;
      await Promise.all([copyFile(b.certFile, certFile), copyFile(b.keyFile, keyFile)]);
      vi.setSystemTime(Date.now() + LOCAL_CERT_RECHECK_MS);
      void running?.tls?.context;
      await vi.waitFor(() => expect(captured.lines.filter((l) => l.event === 'listener.tls_renewed')).toHaveLength(1));
      expect(await presented(running?.tls?.context as SecureContext)).toBe(await fingerprintOf(b.certFile));
    } finally {
      await set.close(100);
    }
  });
});
