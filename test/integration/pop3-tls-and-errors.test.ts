import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage } from '../../src/demo/imap-server.js';
import { WireClient } from '../fakes/imap-wire-client.js';
import {
  CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, runCli, seedStore, startProxy, startUpstreams, writeProxyConfig,
  type ProxyOptions, type ProxyRun, type Upstreams,
} from './harness.js';

/**
 * The POP3 listener through the built proxy: TLS toward the client (STLS and implicit), TLS and
 * OAUTHBEARER toward the server, the replies for a wrong password, an identity provider that is
 * down and an account that needs authorization, the invisible refresh, and bad input.
 */

const MESSAGE = buildMessage({ subject: 'pop3 over tls', to: USER });
const DIGEST = createHash('sha256').update(MESSAGE).digest('hex');
const HOUR = 3_600_000;

let up: Upstreams;
const runs: ProxyRun[] = [];
const upstreams: Upstreams[] = [];

async function proxy(options: ProxyOptions = {}, on: Upstreams = up): Promise<ProxyRun> {
  const { dir, configPath } = writeProxyConfig(on, { protocol: 'pop3', ...options });
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

/** A proxy whose store holds the given access token (expired, or revoked at the provider). */
async function proxyWithToken(accessToken: string, expiresInMs: number, refreshToken = up.idp.issueRefreshToken(USER)): Promise<ProxyRun> {
  const { dir, configPath } = writeProxyConfig(up, { protocol: 'pop3', refreshToken });
  await seedStore(dir, {
    refreshToken, accessToken, accessTokenExpiresAt: Date.now() + expiresInMs,
    seedDigest: createHash('sha256').update(refreshToken).digest('hex'),
  });
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

async function python(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn('python3', ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out };
}

async function connect(run: ProxyRun): Promise<WireClient> {
  const c = await WireClient.connect({ port: run.port });
  expect(await c.readLine()).toBe('+OK oauth-mail-proxy ready');
  return c;
}

async function cmd(c: WireClient, line: string): Promise<string> {
  c.send(`${line}\r\n`);
  return c.readLine();
}

/** USER and PASS on a fresh connection; returns the reply to PASS. */
async function login(run: ProxyRun, password = LOCAL_PASSWORD): Promise<string> {
  const c = await connect(run);
  try {
    expect(await cmd(c, `USER ${USER}`)).toMatch(/^\+OK/);
    return await cmd(c, `PASS ${password}`);
  } finally {
    c.close();
  }
}

const PY_CHECK = `
import hashlib
p.user(os.environ['U'])
print(p.pass_(os.environ['P']))
resp, lines, octets = p.retr(1)
print('DIGEST', hashlib.sha256(b'\\r\\n'.join(lines) + b'\\r\\n').hexdigest())
p.quit()
`;

beforeAll(async () => {
  up = await startUpstreams({ rotateRefreshTokens: false }, 'implicit', { tls: 'implicit' });
  up.imap.deliver(USER, MESSAGE);
});

afterAll(async () => {
  for (const run of runs) await run.stop();
  await up.close();
  for (const u of upstreams) await u.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('TLS toward the client', () => {
  it('STLS with python poplib stls(): no USER before TLS, the download after', async () => {
    const run = await proxy({ clientTls: 'starttls' });
    const c = await connect(run);
    expect(await cmd(c, `USER ${USER}`)).toMatch(/^-ERR \[AUTH\] Use STLS first/);
    c.close();
    const script = `
import os, poplib, ssl
p = poplib.POP3('localhost', int(os.environ['PORT']))
caps = p.capa()
assert 'STLS' in caps and 'USER' not in caps, caps
p.stls(context=ssl.create_default_context(cafile=os.environ['CA']))
assert 'USER' in p.capa()
${PY_CHECK}`;
    const { code, out } = await python(script, { PORT: String(run.port), U: USER, P: LOCAL_PASSWORD, CA: up.certs.caFile });
    expect(out).toContain(`DIGEST ${DIGEST}`);
    expect(code).toBe(0);
  });

  it('implicit TLS with python poplib POP3_SSL', async () => {
    const run = await proxy({ clientTls: 'implicit' });
    const script = `
import os, poplib, ssl
p = poplib.POP3_SSL('localhost', int(os.environ['PORT']), context=ssl.create_default_context(cafile=os.environ['CA']))
${PY_CHECK}`;
    const { code, out } = await python(script, { PORT: String(run.port), U: USER, P: LOCAL_PASSWORD, CA: up.certs.caFile });
    expect(out).toContain(`DIGEST ${DIGEST}`);
    expect(code).toBe(0);
  });
});

describe('toward the server', () => {
  it('STLS to the server and OAUTHBEARER', async () => {
    const other = await startUpstreams({}, 'implicit', { tls: 'starttls' });
    upstreams.push(other);
    other.imap.deliver(USER, MESSAGE);
    const run = await proxy({ sasl: 'oauthbearer' }, other);
    expect(await login(run)).toMatch(/^\+OK alice@example\.com logged in, 1 messages/);
    expect(other.pop3!.stats.commands.slice(0, 2)).toEqual(['STLS', 'AUTH']);
    expect(other.pop3!.stats.authentications).toEqual([{ mechanism: 'OAUTHBEARER', user: USER, ok: true, form: 'two-step' }]);
  });

  it('a server that answers a refused token with -ERR at once (Microsoft 365 style): one refresh and a retry', async () => {
    const other = await startUpstreams({}, 'implicit', { tls: 'implicit', refusal: 'err' });
    upstreams.push(other);
    const run = await proxy({}, other);
    other.pop3!.failNextLogins(1);
    expect(await login(run)).toMatch(/^\+OK/);
    expect(other.pop3!.stats.authentications.map((a) => a.ok)).toEqual([false, true]);
    expect(other.idp.count('token', 'refresh_token')).toBe(2);
  });
});

describe('check', () => {
  it('logs in upstream over POP3 for a pop3 listener, and says which server failed', async () => {
    const other = await startUpstreams({}, 'implicit', { tls: 'starttls' });
    upstreams.push(other);
    const { configPath } = writeProxyConfig(other, { protocol: 'pop3' });
    const ok = await runCli(['check', '-c', configPath]);
    expect(ok.stdout).toMatch(/account\s+flow\s+token\s+pop3\n/);
    expect(ok.stdout).toMatch(new RegExp(`${USER}\\s+refresh_token\\s+ok\\s+ok\\n`));
    expect(ok.code).toBe(0);
    expect(other.pop3!.stats.successfulLogins).toBe(1);
    await other.pop3!.close();
    const failed = await runCli(['check', '-c', configPath]);
    expect(failed.stdout).toMatch(/ok\s+FAILED: .*connection refused/);
    expect(failed.code).toBe(1);
    expect(failed.stdout + failed.stderr).not.toMatch(TOKEN_PATTERN);
  });
});

describe('replies', () => {
  it('a wrong password: -ERR [AUTH] and no upstream connection', async () => {
    const run = await proxy();
    const before = up.pop3!.stats.connections;
    expect(await login(run, 'not the password')).toBe('-ERR [AUTH] Invalid user name or password');
    const c = await connect(run);
    expect(await cmd(c, `AUTH PLAIN ${Buffer.from(`\0nobody@example.com\0x`).toString('base64')}`)).toMatch(/^-ERR \[AUTH\]/);
    c.close();
    expect(up.pop3!.stats.connections).toBe(before);
    await run.waitForEvents('auth.fail', 2);
  });

  it('an expired access token: the client logs in without noticing, after exactly one refresh', async () => {
    const run = await proxyWithToken(up.idp.issueAccessToken(USER, 1), -60_000);
    up.idp.resetRequests();
    expect(await login(run)).toMatch(/^\+OK/);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
    expect(await login(run)).toMatch(/^\+OK/);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
    // Its background refresher must not count in the next test.
    await run.stop();
  });

  it('a token the server rejects although it looked valid: one forced refresh, one retry, login succeeds', async () => {
    const revoked = up.idp.issueAccessToken(USER, 3600);
    up.idp.revoke(revoked);
    const run = await proxyWithToken(revoked, HOUR);
    up.idp.resetRequests();
    const before = up.pop3!.stats.authentications.length;
    expect(await login(run)).toMatch(/^\+OK/);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
    expect(up.pop3!.stats.authentications.slice(before).map((a) => a.ok)).toEqual([false, true]);
  });

  it('identity provider down: -ERR [SYS/TEMP]', async () => {
    const run = await proxyWithToken('at_expired_expired_expired_p', -1);
    for (const mode of ['http500', 'drop'] as const) {
      up.idp.failMode = mode;
      expect(await login(run)).toBe('-ERR [SYS/TEMP] Identity provider unavailable, try again later');
    }
    up.idp.failMode = 'none';
    expect(await login(run)).toMatch(/^\+OK/);
  });

  it('mail server down: -ERR [SYS/TEMP]', async () => {
    const other = await startUpstreams({}, 'implicit', { tls: 'implicit' });
    upstreams.push(other);
    const run = await proxy({}, other);
    await other.pop3!.close();
    expect(await login(run)).toBe('-ERR [SYS/TEMP] Mail server unavailable, try again later');
  });

  it('a revoked grant: -ERR [AUTH] saying the account needs authorization', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const run = await proxyWithToken('at_expired_expired_expired_q', -1, rt);
    up.idp.revoke(rt);
    expect(await login(run)).toMatch(/^-ERR \[AUTH\] Account needs authorization: .+/);
    await run.waitForEvent('token.needs_authorization');
  });
});

describe('bad input before login', () => {
  it('over-long lines, invalid base64 and commands out of order get a clear -ERR; others are served meanwhile', async () => {
    const run = await proxy();
    const before = up.pop3!.stats.connections;
    const bad = await connect(run);
    expect(await cmd(bad, `USER ${'a'.repeat(300)}`)).toBe('-ERR Line too long: at most 255 octets per command (RFC 2449)');
    expect(await cmd(bad, `PASS ${'b'.repeat(100_000)}`)).toBe('-ERR Line too long: at most 255 octets per command (RFC 2449)');
    expect(await cmd(bad, 'AUTH PLAIN %%%not-base64%%%')).toBe('-ERR Invalid base64 data');
    // A well-behaved client is served while the bad one is still connected.
    expect(await login(run)).toMatch(/^\+OK/);
    expect(await cmd(bad, 'PASS secret')).toBe('-ERR PASS must follow USER');
    expect(await cmd(bad, 'RETR 1')).toBe('-ERR RETR needs a login first: USER and PASS, or AUTH');
    expect(await bad.readLine()).toBe('-ERR Too many invalid commands');
    for (let i = 0; i < 100 && !bad.isClosed; i++) await new Promise((r) => setTimeout(r, 20));
    expect(bad.isClosed).toBe(true);
    const c = await connect(run);
    expect(await cmd(c, 'AUTH LOGIN')).toBe('+ VXNlcm5hbWU6');
    expect(await cmd(c, '!!!')).toBe('-ERR Invalid base64 data');
    expect(await cmd(c, 'AUTH PLAIN')).toBe('+ ');
    expect(await cmd(c, '*')).toBe('-ERR AUTH cancelled');
    expect(await cmd(c, 'QUIT')).toBe('+OK oauth-mail-proxy signing off');
    // Only the good login reached the server.
    expect(up.pop3!.stats.connections).toBe(before + 1);
  });

  it('a silent client gets -ERR and is disconnected after the idle timeout', async () => {
    const run = await proxy();
    const c = await connect(run);
    expect(await c.readLine(8000)).toMatch(/^-ERR Autologout; no command for 2 s/);
    for (let i = 0; i < 100 && !c.isClosed; i++) await new Promise((r) => setTimeout(r, 20));
    expect(c.isClosed).toBe(true);
  });
});
