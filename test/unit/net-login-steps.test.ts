import { describe, expect, it } from 'vitest';
import type { Authenticator, ClientInfo } from '../../src/accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../../src/config/resolve.js';
import { ProxyError } from '../../src/errors.js';
import { NO_METRICS } from '../../src/metrics.js';
import { checkLocalLogin, loggedUsername, loginUpstreamAs, type UpstreamLogin } from '../../src/net/login-steps.js';
import { Secret } from '../../src/secret.js';
import type { TokenManager } from '../../src/tokens/types.js';
import { captureLog } from './helpers/imap-kit.js';

const client: ClientInfo = { address: '127.0.0.1', port: 50_000, protocol: 'imap' };
const server: UpstreamServer = { host: 'imap.example.com', port: 993, tls: 'implicit' } as UpstreamServer;

function account(flow: AccountSettings['flow']): AccountSettings {
  return { username: 'alice@example.com', upstreamUsername: 'alice@example.com', flow, saslMechanism: 'xoauth2' } as AccountSettings;
}

function session() {
  const captured = captureLog();
  return { s: { log: captured.log, client, metrics: NO_METRICS.openSession('imap') }, lines: () => captured.lines, raw: captured.raw };
}

/** An authenticator that only records the identity provider's verdicts it is told. */
function judge(verdicts: boolean[] = []): Authenticator {
  return {
    authenticate: async () => Promise.reject(new Error('not used')),
    settleLogin: async (_client, accepted) => {
      verdicts.push(accepted);
    },
  };
}

/** A token manager that hands `use` one token and records what it was asked with. */
function tokens(asked: { password?: Secret | undefined; signal?: AbortSignal }[] = []): TokenManager {
  return {
    withFreshToken: async (_username: string, options: { password?: Secret | undefined; signal: AbortSignal }, use: (token: Secret) => Promise<unknown>) => {
      asked.push(options);
      return use(new Secret('ya29.token'));
    },
  } as unknown as TokenManager;
}

describe('checkLocalLogin', () => {
  it('returns the account and logs auth.ok with the method', async () => {
    const { s, lines } = session();
    const accounts: Authenticator = { authenticate: async () => account('refresh_token'), settleLogin: async () => undefined };
    const got = await checkLocalLogin(s, accounts, { username: 'alice@example.com', password: new Secret('right horse'), method: 'LOGIN' });
    expect(got.username).toBe('alice@example.com');
    expect(lines()).toEqual([expect.objectContaining({ event: 'auth.ok', account: 'alice@example.com', method: 'LOGIN' })]);
  });

  it('rethrows a refusal after an auth.fail line that names the reason and never the password', async () => {
    const { s, lines, raw } = session();
    const refusal = new ProxyError('auth_failed', 'wrong password');
    const accounts: Authenticator = { authenticate: async () => Promise.reject(refusal), settleLogin: async () => undefined };
    const attempt = checkLocalLogin(s, accounts, { username: 'alice@example.com', password: new Secret('wrong horse'), method: 'AUTH PLAIN' });
    await expect(attempt).rejects.toBe(refusal);
    expect(lines()).toEqual([expect.objectContaining({ event: 'auth.fail', username: 'alice@example.com', method: 'AUTH PLAIN' })]);
    expect(String(lines()[0]?.reason)).toMatch(/wrong password/);
    expect(raw()).not.toContain('wrong horse');
  });
});

describe('loggedUsername', () => {
  it('keeps an email address whole and cuts a name a client made long, saying so', () => {
    expect(loggedUsername('alice@example.com')).toBe('alice@example.com');
    const long = 'u'.repeat(8000);
    expect(loggedUsername(long)).toBe(`${'u'.repeat(320)}… (8000 characters)`);
  });
});

describe('loginUpstreamAs', () => {
  const loggedIn: UpstreamLogin<string> = async (to, user, token, mechanism) => `${to.host} ${user} ${token.reveal()} ${mechanism}`;

  it('logs in with a fresh token and logs upstream.connect', async () => {
    const { s, lines } = session();
    const got = await loginUpstreamAs(s, account('refresh_token'), undefined, { accounts: judge(), tokens: tokens(), server, protocol: 'IMAP', login: loggedIn, clientGone: new AbortController().signal });
    expect(got).toBe('imap.example.com alice@example.com ya29.token xoauth2');
    expect(lines()).toEqual([expect.objectContaining({ event: 'upstream.connect', account: 'alice@example.com', server: 'imap.example.com:993', tls: 'implicit' })]);
  });

  it('hands the typed password to the token manager for flow "password" only', async () => {
    const asked: { password?: Secret | undefined }[] = [];
    const typed = new Secret('right horse');
    const plan = { accounts: judge(), tokens: tokens(asked), server, protocol: 'IMAP', login: loggedIn, clientGone: new AbortController().signal };
    await loginUpstreamAs(session().s, account('password'), typed, plan);
    await loginUpstreamAs(session().s, account('refresh_token'), typed, plan);
    expect(asked.map((a) => a.password)).toEqual([typed, undefined]);
  });

  it('refuses an account without a server for the protocol, and logs login.fail', async () => {
    const { s, lines } = session();
    const attempt = loginUpstreamAs(s, account('refresh_token'), undefined, { accounts: judge(), tokens: tokens(), server: undefined, protocol: 'POP3', login: loggedIn, clientGone: new AbortController().signal });
    await expect(attempt).rejects.toMatchObject({ code: 'config_invalid', message: 'No POP3 server is configured for this account' });
    expect(lines()).toEqual([expect.objectContaining({ event: 'login.fail', code: 'config_invalid' })]);
  });

  it('ends the attempt when the proxy shuts down, and says nothing when the client has gone', async () => {
    const shutdown = new AbortController();
    const gone = new AbortController();
    const waitForAbort: UpstreamLogin<string> = (_to, _user, _token, _mechanism, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new ProxyError('upstream_unavailable', 'stopped', { cause: signal.reason }))));

    const first = session();
    const stopped = loginUpstreamAs(first.s, account('refresh_token'), undefined, { accounts: judge(), tokens: tokens(), server, protocol: 'IMAP', login: waitForAbort, clientGone: new AbortController().signal, shutdown: shutdown.signal });
    shutdown.abort(new ProxyError('aborted', 'the proxy is stopping'));
    await expect(stopped).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(first.lines()).toEqual([expect.objectContaining({ event: 'login.fail', code: 'upstream_unavailable' })]);

    const second = session();
    const abandoned = loginUpstreamAs(second.s, account('refresh_token'), undefined, { accounts: judge(), tokens: tokens(), server, protocol: 'IMAP', login: waitForAbort, clientGone: gone.signal });
    gone.abort(new ProxyError('aborted', 'client closed the connection'));
    await expect(abandoned).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(second.lines()).toEqual([]);
  });

  it('tells the throttle what the identity provider said of a flow "password" login, and only for that flow', async () => {
    const verdicts: boolean[] = [];
    const plan = { accounts: judge(verdicts), tokens: tokens(), server, protocol: 'IMAP', login: loggedIn, clientGone: new AbortController().signal };
    await loginUpstreamAs(session().s, account('password'), new Secret('right horse'), plan);
    await loginUpstreamAs(session().s, account('refresh_token'), undefined, plan);
    expect(verdicts).toEqual([true]);

    const { s, lines, raw } = session();
    const refusal = new ProxyError('auth_failed', 'the identity provider refused the password of alice@example.com (invalid_grant)');
    const refusing = { withFreshToken: async () => Promise.reject(refusal) } as unknown as TokenManager;
    const attempt = loginUpstreamAs(s, account('password'), new Secret('wrong horse'), { ...plan, tokens: refusing });
    await expect(attempt).rejects.toBe(refusal);
    expect(verdicts).toEqual([true, false]);
    expect(lines()).toEqual([expect.objectContaining({ event: 'auth.fail', username: 'alice@example.com', method: 'identity provider' })]);
    expect(raw()).not.toContain('wrong horse');
  });
});
