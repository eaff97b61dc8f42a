import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp, type MockIdp } from '../../../src/demo/mock-idp.js';
import { isProxyError, type ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { createCommandProvider, parseCommandOutput } from '../../../src/tokens/providers/command.js';
import { createTokenProvider } from '../../../src/tokens/providers/index.js';
import { createStaticProvider, staticTokenRejected } from '../../../src/tokens/providers/static.js';
import { accountFor, signal } from '../../fakes/token-fixtures.js';

const USER = 'alice@example.com';
let idp: MockIdp | undefined;

afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

async function failure(call: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as Error;
}

describe('static provider', () => {
  it('returns the configured token until its expiry, then token_expired', async () => {
    let clock = 1_000_000;
    const account = accountFor('', { flow: 'static', staticToken: { value: new Secret('at_static'), expiresAt: 2_000_000 } });
    const provider = createStaticProvider(account, { now: () => clock });
    const grant = await provider.obtain({ signal: signal() });
    expect(grant.accessToken.reveal()).toBe('at_static');
    expect(grant.expiresAt).toBe(2_000_000);
    clock = 2_000_000;
    const err = await failure(provider.obtain({ signal: signal() }), 'token_expired');
    expect(err.message).toMatch(/expired at .*configure a new access_token/);
    expect(err.message).not.toContain('at_static');
  });

  it('words an upstream rejection as an expired token', () => {
    const err = staticTokenRejected(accountFor('', { flow: 'static' }), new Error('NO'));
    expect(err.code).toBe('token_expired');
    expect(err.message).toMatch(/refused the static access token.*configure a new/);
  });
});

describe('refresh-token provider (also device_code and authorization_code)', () => {
  it('refreshes with the stored refresh token', async () => {
    idp = await startMockIdp({ rotateRefreshTokens: true });
    const rt = idp.issueRefreshToken(USER);
    const provider = createTokenProvider(accountFor(idp.tokenUrl));
    const grant = await provider.obtain({ refreshToken: new Secret(rt), signal: signal() });
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
    expect(grant.refreshToken?.reveal()).not.toBe(rt);
  });

  it('says how to get a refresh token when there is none, per flow', async () => {
    idp = await startMockIdp();
    const rtErr = await failure(createTokenProvider(accountFor(idp.tokenUrl)).obtain({ signal: signal() }), 'needs_authorization');
    expect(rtErr.message).toMatch(/refresh_token .* in the config/);
    const device = createTokenProvider(accountFor(idp.tokenUrl, { flow: 'device_code' }));
    const devErr = await failure(device.obtain({ signal: signal() }), 'needs_authorization');
    expect(devErr.message).toContain(`run \`oauth-mail-proxy auth ${USER}\``);
    expect(idp.count()).toBe(0);
  });

  it('turns invalid_grant into needs_authorization naming the account and what to do', async () => {
    idp = await startMockIdp();
    const provider = createTokenProvider(accountFor(idp.tokenUrl, { flow: 'authorization_code' }));
    const err = await failure(provider.obtain({ refreshToken: new Secret('rt_revoked'), signal: signal() }), 'needs_authorization');
    expect(err.message).toContain(`account ${USER}`);
    expect(err.message).toContain('invalid_grant');
    expect(err.message).toContain('oauth-mail-proxy auth');
    expect(err.message).not.toContain('rt_revoked');
  });

  it('passes temporary failures on as idp_unavailable', async () => {
    idp = await startMockIdp();
    idp.failMode = 'http500';
    const provider = createTokenProvider(accountFor(idp.tokenUrl));
    await failure(provider.obtain({ refreshToken: new Secret('rt_x'), signal: signal() }), 'idp_unavailable');
  });
});

describe('password (ROPC) provider', () => {
  const ropc = (url: string) => accountFor(url, { flow: 'password', localPassword: { kind: 'provider' }, oauth: { tokenUrl: url, clientId: 'proxy', scope: 'mail' } });

  it('gets a grant with the password, refresh token included', async () => {
    idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }], clients: [{ clientId: 'proxy' }] });
    const grant = await createTokenProvider(ropc(idp.tokenUrl)).obtain({ password: new Secret('pw'), signal: signal() });
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
    expect(grant.refreshToken).toBeDefined();
  });

  it('refuses a wrong password with auth_failed', async () => {
    idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }], clients: [{ clientId: 'proxy' }] });
    const err = await failure(createTokenProvider(ropc(idp.tokenUrl)).obtain({ password: new Secret('wrong'), signal: signal() }), 'auth_failed');
    expect(err.message).toContain('invalid_grant');
    expect(err.message).not.toContain('wrong');
  });

  it('uses the refresh token first, and the password when the refresh token is dead', async () => {
    idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }], clients: [{ clientId: 'proxy' }] });
    const provider = createTokenProvider(ropc(idp.tokenUrl));
    const rt = idp.issueRefreshToken(USER);
    await provider.obtain({ refreshToken: new Secret(rt), password: new Secret('pw'), signal: signal() });
    expect(idp.count('token', 'refresh_token')).toBe(1);
    expect(idp.count('token', 'password')).toBe(0);
    idp.revoke(rt);
    const grant = await provider.obtain({ refreshToken: new Secret(rt), password: new Secret('pw'), signal: signal() });
    expect(grant.refreshToken).toBeDefined();
    expect(idp.count('token', 'password')).toBe(1);
  });

  it('without a password, a dead refresh token is needs_authorization; with neither, no request at all', async () => {
    idp = await startMockIdp({ clients: [{ clientId: 'proxy' }] });
    const provider = createTokenProvider(ropc(idp.tokenUrl));
    await failure(provider.obtain({ refreshToken: new Secret('rt_dead'), signal: signal() }), 'needs_authorization');
    idp.resetRequests();
    await failure(provider.obtain({ signal: signal() }), 'needs_authorization');
    expect(idp.count()).toBe(0);
  });
});

describe('client-credentials provider', () => {
  it('gets an app-only token with the client secret', async () => {
    idp = await startMockIdp();
    const grant = await createTokenProvider(accountFor(idp.tokenUrl, { flow: 'client_credentials' })).obtain({ signal: signal() });
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe('proxy');
    expect(grant.refreshToken).toBeUndefined();
  });

  it('says to check the client secret on invalid_client', async () => {
    idp = await startMockIdp();
    const account = accountFor(idp.tokenUrl, { flow: 'client_credentials' });
    account.oauth.clientSecret = new Secret('not-it');
    const err = await failure(createTokenProvider(account).obtain({ signal: signal() }), 'needs_authorization');
    expect(err.message).toMatch(/client_secret/);
  });
});

describe('command provider', () => {
  const commandAccount = (command: string | string[]) => accountFor('', { flow: 'command', command });

  it('takes trimmed stdout of an argv as the token', async () => {
    const grant = await createTokenProvider(commandAccount(['/bin/echo', '  at_from_argv  '])).obtain({ signal: signal() });
    expect(grant.accessToken.reveal()).toBe('at_from_argv');
    expect(grant.expiresAt).toBeUndefined();
  });

  it('runs a string through /bin/sh -c and reads JSON with expires_in', async () => {
    const before = Date.now();
    const provider = createTokenProvider(commandAccount(`printf '%s' '{"access_token":"at_json","expires_in":90}'`));
    const grant = await provider.obtain({ signal: signal() });
    expect(grant.accessToken.reveal()).toBe('at_json');
    expect(grant.expiresAt! - before).toBeGreaterThanOrEqual(90_000);
    expect(grant.expiresAt! - before).toBeLessThan(95_000);
  });

  it('reads expires_at as epoch seconds or ISO 8601', () => {
    const seconds = parseCommandOutput('{"access_token":"a","expires_at":2000000000}', 0);
    expect(typeof seconds !== 'string' && seconds.expiresAt).toBe(2_000_000_000_000);
    const iso = parseCommandOutput('{"access_token":"a","expires_at":"2030-01-01T00:00:00Z"}', 0);
    expect(typeof iso !== 'string' && iso.expiresAt).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect(parseCommandOutput('two words', 0)).toMatch(/more than one word/);
    expect(parseCommandOutput('{"nope":1}', 0)).toMatch(/without an access_token/);
    expect(parseCommandOutput('  \n', 0)).toMatch(/nothing/);
  });

  it('reports a non-zero exit with the first line of stderr, never stdout', async () => {
    const provider = createTokenProvider(commandAccount(`echo at_leaked; echo 'vault: sealed' >&2; echo more >&2; exit 3`));
    const err = await failure(provider.obtain({ signal: signal() }), 'idp_unavailable');
    expect(err.message).toBe(`token command of ${USER} failed (exit 3): vault: sealed`);
    expect(err.message).not.toContain('at_leaked');
  });

  it('cuts the token out of stderr should a tool echo it there', async () => {
    const provider = createTokenProvider(commandAccount(`echo at_echoed_token; echo "bad at_echoed_token" >&2; exit 1`));
    const err = await failure(provider.obtain({ signal: signal() }), 'idp_unavailable');
    expect(err.message).toContain('bad [redacted]');
    expect(err.message).not.toContain('at_echoed_token');
  });

  it('cuts a JSON access_token out of stderr too', async () => {
    const provider = createTokenProvider(commandAccount(`echo '{"access_token":"at_json_echoed"}'; echo "got at_json_echoed" >&2; exit 1`));
    const err = await failure(provider.obtain({ signal: signal() }), 'idp_unavailable');
    expect(err.message).toContain('got [redacted]');
  });

  it('times out, limits output, reports a missing program, and honours abort', async () => {
    const slow = createCommandProvider(commandAccount(['/bin/sleep', '5']), { timeoutMs: 150 });
    const started = Date.now();
    expect((await failure(slow.obtain({ signal: signal() }), 'idp_unavailable')).message).toMatch(/did not finish within 0.15 s/);
    expect(Date.now() - started).toBeLessThan(2_000);
    const chatty = createCommandProvider(commandAccount('head -c 5000 /dev/zero | tr "\\0" a'), { maxOutputBytes: 1000 });
    expect((await failure(chatty.obtain({ signal: signal() }), 'idp_unavailable')).message).toMatch(/too much output/);
    const missing = createCommandProvider(commandAccount(['/nonexistent/token-tool']));
    expect((await failure(missing.obtain({ signal: signal() }), 'idp_unavailable')).message).toMatch(/could not be started \(ENOENT\)/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await failure(createCommandProvider(commandAccount(['/bin/sleep', '5'])).obtain({ signal: controller.signal }), 'aborted');
  });
});
