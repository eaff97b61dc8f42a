import { afterAll, describe, expect, it } from 'vitest';
import type { UpstreamServer } from '../../../src/config/resolve.js';
import { startDemoPop3Server, type DemoPop3Server, type DemoPop3ServerOptions } from '../../../src/demo/pop3-server.js';
import { ProxyError } from '../../../src/errors.js';
import { loginPop3Upstream } from '../../../src/pop3/upstream-login.js';
import { Secret } from '../../../src/secret.js';
import { getTestCertificates } from '../../fakes/certs.js';

/** The proxy's POP3 upstream login against the demo POP3 server, over real TLS. */

const USER = 'alice@example.com';
const GOOD = 'good-token';
const certs = getTestCertificates();
const servers: DemoPop3Server[] = [];

async function start(options: Partial<DemoPop3ServerOptions> = {}): Promise<{ server: DemoPop3Server; upstream: UpstreamServer }> {
  const server = await startDemoPop3Server({
    tls: 'implicit', cert: certs.certPem, key: certs.keyPem,
    validateToken: (user, token) => user === USER && token === GOOD,
    mailboxes: { [USER]: ['Subject: one\r\n\r\nhello\r\n'] },
    ...options,
  });
  servers.push(server);
  const tls = options.tls === 'starttls' ? 'starttls' : 'implicit';
  return { server, upstream: { host: 'localhost', port: server.port, tls, caFile: certs.caFile, insecureSkipVerify: false } };
}

function signal(): AbortSignal {
  return AbortSignal.timeout(10_000);
}

/** Sends a command on a logged-in session and reads the reply up to `end`. */
async function exchange(socket: import('node:net').Socket, command: string, end: RegExp): Promise<string> {
  socket.write(`${command}\r\n`);
  let text = '';
  for await (const chunk of socket) {
    text += (chunk as Buffer).toString('latin1');
    if (end.test(text)) return text;
  }
  return text;
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('loginPop3Upstream', () => {
  it('implicit TLS, two-step AUTH XOAUTH2, then the session is the server\'s', async () => {
    const { server, upstream } = await start();
    const session = await loginPop3Upstream(upstream, USER, new Secret(GOOD), 'xoauth2', signal());
    expect(session.reply.toString()).toMatch(/^\+OK alice@example\.com logged in.*\r\n$/);
    expect(await exchange(session.socket, 'STAT', /\r\n$/)).toMatch(/^\+OK 1 \d+\r\n$/);
    session.socket.destroy();
    expect(server.stats.authentications).toEqual([{ mechanism: 'XOAUTH2', user: USER, ok: true, form: 'two-step' }]);
    expect(server.stats.passwordSeen).toBe(false);
  });

  it('STLS to the server, and OAUTHBEARER', async () => {
    const { server, upstream } = await start({ tls: 'starttls' });
    const session = await loginPop3Upstream(upstream, USER, new Secret(GOOD), 'oauthbearer', signal());
    expect(session.reply.toString()).toMatch(/^\+OK /);
    session.socket.destroy();
    expect(server.stats.commands.slice(0, 2)).toEqual(['STLS', 'AUTH']);
    expect(server.stats.lastMechanism).toBe('OAUTHBEARER');
  });

  it('a refused token after Gmail\'s error challenge is token_rejected, with the challenge details', async () => {
    const { server, upstream } = await start();
    const err = await loginPop3Upstream(upstream, USER, new Secret('bad-token'), 'xoauth2', signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe('token_rejected');
    expect((err as ProxyError).message).toMatch(/status 400/);
    expect((err as ProxyError).message).not.toContain('bad-token');
    expect(server.stats.failedLogins).toBe(1);
  });

  it('a refused token answered with -ERR at once (Microsoft 365) is token_rejected too', async () => {
    const { upstream } = await start({ refusal: 'err' });
    const err = await loginPop3Upstream(upstream, USER, new Secret('bad-token'), 'oauthbearer', signal()).catch((e: unknown) => e);
    expect((err as ProxyError).code).toBe('token_rejected');
  });

  it('a server without the mechanism is upstream_unavailable, not a token problem', async () => {
    const { upstream } = await start({ mechanisms: ['OAUTHBEARER'] });
    const err = await loginPop3Upstream(upstream, USER, new Secret(GOOD), 'xoauth2', signal()).catch((e: unknown) => e);
    expect((err as ProxyError).code).toBe('upstream_unavailable');
    expect((err as ProxyError).message).toMatch(/does not take AUTH XOAUTH2/);
  });

  it('an untrusted server certificate is upstream_unavailable', async () => {
    const { upstream } = await start();
    const err = await loginPop3Upstream({ ...upstream, caFile: undefined }, USER, new Secret(GOOD), 'xoauth2', signal()).catch((e: unknown) => e);
    expect((err as ProxyError).code).toBe('upstream_unavailable');
    expect((err as ProxyError).message).toMatch(/certificate/);
  });

  it('nothing listening is upstream_unavailable', async () => {
    const { server, upstream } = await start();
    await server.close();
    const err = await loginPop3Upstream(upstream, USER, new Secret(GOOD), 'xoauth2', signal()).catch((e: unknown) => e);
    expect((err as ProxyError).code).toBe('upstream_unavailable');
  });
});
