import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamServer } from '../../src/config/resolve.js';
import { loginImapUpstream } from '../../src/imap/upstream-login.js';
import { Secret } from '../../src/secret.js';
import { captureLog, makeCertificate, startScriptedUpstream, type ScriptedUpstream, type ScriptedUpstreamOptions } from './helpers/imap-kit.js';

let dir: string;
let cert: Awaited<ReturnType<typeof makeCertificate>>;
const servers: ScriptedUpstream[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-upstream-'));
  cert = await makeCertificate(dir);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

async function scripted(options: Partial<ScriptedUpstreamOptions> = {}): Promise<{ upstream: ScriptedUpstream; server: UpstreamServer }> {
  const upstream = await startScriptedUpstream({ cert: cert.cert, key: cert.key, acceptTokens: ['good'], ...options });
  servers.push(upstream);
  const server: UpstreamServer = {
    host: '127.0.0.1', port: upstream.port, tls: options.tls ?? 'implicit', caFile: cert.certFile, servername: 'localhost', insecureSkipVerify: false,
  };
  return { upstream, server };
}

const signal = () => AbortSignal.timeout(10_000);

describe('loginImapUpstream', () => {
  it('logs in with XOAUTH2 over verified implicit TLS using SASL-IR', async () => {
    const { upstream, server } = await scripted();
    const session = await loginImapUpstream(server, 'alice', new Secret('good'), 'xoauth2', signal());
    expect(session.capabilities).toBe('IMAP4rev1 IDLE MOVE');
    expect(session.leftover.length).toBe(0);
    expect(upstream.authMessages).toEqual(['user=alice\x01auth=Bearer good\x01\x01']);
    session.socket.destroy();
  });

  it('waits for "+" when the server has no SASL-IR, and asks CAPABILITY when the OK has none', async () => {
    const { upstream, server } = await scripted({ saslIr: false, capabilityInOk: false });
    const session = await loginImapUpstream(server, 'alice', new Secret('good'), 'xoauth2', signal());
    expect(session.capabilities).toBe('IMAP4rev1 IDLE MOVE');
    // The greeting carried capabilities: omp1 is AUTHENTICATE, omp2 the CAPABILITY after it.
    expect(upstream.afterLogin).toEqual(['omp2 CAPABILITY']);
    session.socket.destroy();
  });

  it('answers an OAUTHBEARER error challenge with ^A and reports token_rejected', async () => {
    const { upstream, server } = await scripted();
    const failure = loginImapUpstream(server, 'alice', new Secret('bad'), 'oauthbearer', signal());
    await expect(failure).rejects.toMatchObject({ code: 'token_rejected' });
    await expect(failure).rejects.toThrow(/rejected the access token: .*Invalid credentials.*status 401/);
    expect(upstream.challengeAnswers).toEqual(['AQ==']);
    expect(upstream.authMessages[0]).toBe('n,a=alice,\x01host=localhost\x01port=' + server.port + '\x01auth=Bearer bad\x01\x01');
  });

  it('does STARTTLS upstream and ignores plaintext the server injects after its OK', async () => {
    const { upstream, server } = await scripted({ tls: 'starttls', inject: '* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\nomp2 OK injected\r\n' });
    const logs = captureLog();
    const session = await loginImapUpstream(server, 'alice', new Secret('good'), 'xoauth2', signal(), { log: logs.log });
    expect(session.capabilities).toBe('IMAP4rev1 IDLE MOVE');
    expect(upstream.authMessages).toHaveLength(1);
    expect(session.socket.constructor.name).toBe('TLSSocket');
    expect(logs.lines.find((l) => l.event === 'upstream.starttls_injection')).toMatchObject({ bytes: 67 });
    session.socket.destroy();
  });

  it('refuses a certificate it cannot verify, saying why', async () => {
    const { server } = await scripted();
    const noCa = { ...server, caFile: undefined };
    await expect(loginImapUpstream(noCa, 'alice', new Secret('good'), 'xoauth2', signal()))
      .rejects.toThrow(/^127\.0\.0\.1:\d+: certificate verification failed: the server's certificate is self-signed/);
    const wrongName = { ...server, servername: 'imap.example.com' };
    await expect(loginImapUpstream(wrongName, 'alice', new Secret('good'), 'xoauth2', signal()))
      .rejects.toMatchObject({ code: 'upstream_unavailable', message: expect.stringContaining('does not name this host') });
  });

  it('connects without verification only when told to, with a loud warning', async () => {
    const { server } = await scripted();
    const logs = captureLog();
    const session = await loginImapUpstream({ ...server, caFile: undefined, insecureSkipVerify: true }, 'alice', new Secret('good'), 'xoauth2', signal(), { log: logs.log });
    session.socket.destroy();
    expect(logs.lines.find((l) => l.event === 'upstream.tls_insecure')).toMatchObject({ level: 40 });
  });

  it('names host and port when nothing listens, and honours the signal', async () => {
    const server: UpstreamServer = { host: '127.0.0.1', port: 1, tls: 'implicit', insecureSkipVerify: false };
    await expect(loginImapUpstream(server, 'a', new Secret('t'), 'xoauth2', signal())).rejects.toThrow('127.0.0.1:1: connection refused');
    const { server: live } = await scripted();
    const controller = new AbortController();
    controller.abort();
    await expect(loginImapUpstream(live, 'a', new Secret('good'), 'xoauth2', controller.signal)).rejects.toMatchObject({ code: 'aborted' });
  });

  it('speaks IPv6', async () => {
    const { server } = await scripted();
    // The scripted server listens on 127.0.0.1 only; ::1 must be refused with a bracketed address.
    await expect(loginImapUpstream({ ...server, host: '::1' }, 'a', new Secret('good'), 'xoauth2', signal())).rejects.toThrow(`[::1]:${server.port}`);
  });
});
