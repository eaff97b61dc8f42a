import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startListener } from '../../src/net/listener.js';
import { LocalTls, ensureSelfSignedCertificate } from '../../src/net/local-tls.js';
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
