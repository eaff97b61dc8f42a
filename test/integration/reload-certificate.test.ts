import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTestCertificates, type PemPair } from '../fakes/certs.js';
import { LOCAL_PASSWORD, USER, accountYaml, corpProviderYaml, startProxy, startUpstreams, type ProxyRun, type Upstreams } from './harness.js';

/**
 * SIGHUP renews a listener's certificate (SPEC section 6: reload without dropping sessions). A
 * certificate renewed where the old one was (certbot, an ACME client, a mounted secret) is
 * used from the next handshake on, for implicit TLS and for STARTTLS/STLS in all three
 * protocols, while the listener keeps its port and a session already relaying keeps going. A
 * pair that does not fit together is refused with an error, and the certificate in use stays.
 */

let up: Upstreams;
let run: ProxyRun;
let certFile: string;
let keyFile: string;
const ports: Record<string, number> = {};
const certs = getTestCertificates();
/** The first pair (signed by the test CA) and the renewal (another key and certificate). */
const first: PemPair = certs;
const renewed: PemPair = certs.untrustedCert;

/** Writes the pair the way an ACME client does: a new file renamed over the old one. */
function installPair(certPem: string, keyPem: string): void {
  writeFileSync(`${keyFile}.new`, keyPem, { mode: 0o600 });
  renameSync(`${keyFile}.new`, keyFile);
  writeFileSync(`${certFile}.new`, certPem);
  renameSync(`${certFile}.new`, certFile);
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

beforeAll(async () => {
  up = await startUpstreams({}, 'implicit', { tls: 'implicit' });
  const dir = mkdtempSync(join(tmpdir(), 'omp-reload-cert-'));
  certFile = join(dir, 'cert.pem');
  keyFile = join(dir, 'key.pem');
  installPair(first.certPem, first.keyPem);
  const configPath = join(dir, 'config.yaml');
  const tls = `cert_file: ${certFile}, key_file: ${keyFile}`;
  writeFileSync(configPath, `
listeners:
  - { protocol: imap, listen: 127.0.0.1:0, tls: implicit, ${tls} }
  - { protocol: imap, listen: 127.0.0.1:0, tls: starttls, ${tls} }
  - { protocol: pop3, listen: 127.0.0.1:0, tls: starttls, ${tls} }
  - { protocol: smtp, listen: 127.0.0.1:0, tls: starttls, ${tls} }
${corpProviderYaml(up)}accounts:
${accountYaml(up, USER, LOCAL_PASSWORD)}token_store: { path: ./data/tokens.enc, key_file: ./data/tokens.key }
log: { level: info, format: json }
`);
  run = await startProxy(configPath, dir);
  const started = await run.waitForEvents('listener.start', 4);
  for (const e of started) ports[`${String(e.protocol)}-${String(e.tls)}`] = Number(e.port);
});

afterAll(async () => {
  await run.stop();
  await up.close();
});

/** Collects what a socket receives; `until` waits for a pattern in what came since the last call. */
function collect(socket: Socket): { until(pattern: RegExp): Promise<string> } {
  let text = '';
  let wake = (): void => undefined;
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    wake();
  });
  return {
    async until(pattern) {
      while (!pattern.test(text)) await new Promise<void>((resolve) => (wake = resolve));
      const seen = text;
      text = '';
      return seen;
    },
  };
}

/** The certificate the proxy shows, and the TLS socket (still open) to go on with. */
async function handshake(options: { port?: number; socket?: Socket }): Promise<{ fingerprint: string; socket: TLSSocket }> {
  const socket = tlsConnect({ ...options, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  return { fingerprint: socket.getPeerX509Certificate()!.fingerprint256, socket };
}

/** The certificate each listener shows to a new client: implicit TLS, STARTTLS, STLS and SMTP STARTTLS. */
async function certificatesShown(): Promise<Record<string, string>> {
  const implicit = await handshake({ port: ports['imap-implicit']! });
  implicit.socket.destroy();
  const shown: Record<string, string> = { imapImplicit: implicit.fingerprint };
  const dialogues: [string, number, RegExp, string, RegExp][] = [
    ['imapStarttls', ports['imap-starttls']!, /^\* OK.*\r\n/m, 's STARTTLS\r\n', /^s OK.*\r\n/m],
    ['pop3Stls', ports['pop3-starttls']!, /^\+OK.*\r\n/m, 'STLS\r\n', /^\+OK.*\r\n/m],
    ['smtpStarttls', ports['smtp-starttls']!, /^220 .*\r\n/m, 'EHLO client\r\nSTARTTLS\r\n', /^220 .*\r\n/m],
  ];
  for (const [name, port, greeting, command, ready] of dialogues) {
    const plain = connect({ host: '127.0.0.1', port });
    const received = collect(plain);
    await received.until(greeting);
    plain.write(command);
    await received.until(ready);
    plain.removeAllListeners('data');
    const secured = await handshake({ socket: plain });
    shown[name] = secured.fingerprint;
    secured.socket.destroy();
  }
  return shown;
}

function everywhere(fingerprint: string): Record<string, string> {
  return { imapImplicit: fingerprint, imapStarttls: fingerprint, pop3Stls: fingerprint, smtpStarttls: fingerprint };
}

describe('SIGHUP renews listener certificates', () => {
  it('uses a renewed pair from the next handshake on, keeps the ports and the relayed session', async () => {
    expect(await certificatesShown()).toEqual(everywhere(fingerprintOf(first.certPem)));
    // A session over implicit TLS, logged in and relaying before the renewal.
    const { socket: relayed, fingerprint: relayedShown } = await handshake({ port: ports['imap-implicit']! });
    const replies = collect(relayed);
    await replies.until(/^\* OK.*\r\n/m);
    relayed.write(`a LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}\r\n`);
    expect(await replies.until(/^a .*\r\n/m)).toMatch(/^a OK/m);

    installPair(renewed.certPem, renewed.keyPem);
    run.child.kill('SIGHUP');
    const reload = await run.waitForEvent('config.reload');
    expect(reload.listeners).toMatchObject({ kept: 4, started: [], stopped: [], failed: [] });
    expect((reload.listeners as { renewed: string[] }).renewed).toHaveLength(4);
    expect(run.events('listener.tls_renewed')).toHaveLength(4);

    expect(await certificatesShown()).toEqual(everywhere(fingerprintOf(renewed.certPem)));
    relayed.write('b NOOP\r\n');
    expect(await replies.until(/^b .*\r\n/m)).toMatch(/^b OK/m);
    expect(relayedShown).toBe(fingerprintOf(first.certPem));
    relayed.destroy();
  });

  it('refuses a certificate whose key does not match, and keeps the one in use', async () => {
    installPair(first.certPem, renewed.keyPem);
    run.child.kill('SIGHUP');
    await run.waitForEvents('config.reload', 2);
    const failures = await run.waitForEvents('listener.tls_renew_failed', 4);
    expect(String(failures[0]!.err)).toMatch(/cert\.pem.*key\.pem/);
    const reload = run.events('config.reload').at(-1)!;
    expect((reload.listeners as { failed: string[] }).failed).toEqual(expect.arrayContaining(['imap 127.0.0.1:0 (certificate)', 'smtp 127.0.0.1:0 (certificate)']));
    expect(await certificatesShown()).toEqual(everywhere(fingerprintOf(renewed.certPem)));
  });

  it('renews nothing when the files are unchanged', async () => {
    installPair(renewed.certPem, renewed.keyPem);
    run.child.kill('SIGHUP');
    await run.waitForEvents('config.reload', 3);
    const reload = run.events('config.reload').at(-1)!;
    expect(reload.listeners).toMatchObject({ kept: 4, renewed: [], failed: [] });
    expect(await certificatesShown()).toEqual(everywhere(fingerprintOf(renewed.certPem)));
  });
});
