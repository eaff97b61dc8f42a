import { afterEach, describe, expect, it, vi } from 'vitest';
import { startMockIdp, type MockIdp, type MockIdpOptions } from '../../../src/demo/mock-idp.js';
import { isProxyError, ProxyError, type ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { defaultSleep, startDeviceSignIn } from '../../../src/tokens/device-flow.js';
import { createOAuthClient, type OAuthClient } from '../../../src/tokens/oauth-client.js';
import { CLIENT_ID, CLIENT_SECRET } from '../../fakes/token-fixtures.js';

/**
 * RFC 8628 polling against the mock identity provider, on one fake clock: `sleep` moves the
 * clock instead of waiting, so a ten-minute code expires in milliseconds.
 */

const USER = 'alice@example.com';
let idp: MockIdp | undefined;

afterEach(async () => {
  await idp?.close();
  idp = undefined;
  vi.useRealTimers();
});

interface Clock {
  now: () => number;
  /** Every wait the flow asked for, in ms. */
  sleeps: number[];
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Runs before each wait returns (e.g. a person approving on the third poll). */
  onSleep?: ((count: number) => void) | undefined;
  /** Shortens a wait by this much, once (a client polling too fast). */
  shortChange: number;
}

function fakeClock(): Clock {
  let t = Date.parse('2030-01-01T00:00:00Z');
  const clock: Clock = {
    now: () => t,
    sleeps: [],
    shortChange: 0,
    sleep: async (ms, signal) => {
      if (signal.aborted) throw new ProxyError('aborted', 'aborted');
      clock.sleeps.push(ms);
      t += ms - clock.shortChange;
      clock.shortChange = 0;
      clock.onSleep?.(clock.sleeps.length);
    },
  };
  return clock;
}

async function setup(clock: Clock, options: MockIdpOptions = {}): Promise<{ idp: MockIdp; client: OAuthClient }> {
  idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }], now: clock.now, ...options });
  const client = createOAuthClient(
    { tokenUrl: idp.tokenUrl, deviceAuthorizationUrl: idp.deviceAuthorizationUrl, clientId: CLIENT_ID, clientSecret: new Secret(CLIENT_SECRET), scope: 'mail' },
    { now: clock.now },
  );
  return { idp, client };
}

async function rejection(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as Error;
}

describe('device authorization grant (RFC 8628)', () => {
  it('shows a user code and polls through authorization_pending until the person approves', async () => {
    const clock = fakeClock();
    const { idp, client } = await setup(clock);
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(5000), clock);
    expect(signIn.userCode).toMatch(/^[B-Z]{4}-[B-Z]{4}$/);
    expect(signIn.verificationUri).toBe(idp.verificationUrl);
    expect(signIn.verificationUriComplete).toContain(encodeURIComponent(signIn.userCode));
    expect(signIn.expiresAt).toBe(clock.now() + 600_000);
    clock.onSleep = (n) => {
      if (n === 3) expect(idp.approveDevice(signIn.userCode, USER)).toBe(true);
    };
    const grant = await signIn.waitForApproval(AbortSignal.timeout(5000));
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
    expect(grant.refreshToken && idp.isRefreshTokenActive(grant.refreshToken.reveal())).toBe(true);
    expect(clock.sleeps).toEqual([5000, 5000, 5000]);
    const polls = idp.requests.filter((r) => r.grantType === 'urn:ietf:params:oauth:grant-type:device_code');
    expect(polls.map((r) => r.error ?? r.status)).toEqual(['authorization_pending', 'authorization_pending', 200]);
  });

  it('adds 5 seconds to the interval after slow_down, and keeps the longer interval', async () => {
    const clock = fakeClock();
    const { idp, client } = await setup(clock);
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(5000), clock);
    clock.onSleep = (n) => {
      if (n === 1) clock.shortChange = 1000; // the second wait comes up a second short: slow_down
      if (n === 4) idp.approveDevice(signIn.userCode, USER);
    };
    await signIn.waitForApproval(AbortSignal.timeout(5000));
    expect(clock.sleeps).toEqual([5000, 5000, 10_000, 10_000]);
    const errors = idp.requests.filter((r) => r.endpoint === 'token').map((r) => r.error ?? r.status);
    expect(errors).toEqual(['authorization_pending', 'slow_down', 'authorization_pending', 200]);
  });

  it('stops with "declined" when the person denies on the verification page', async () => {
    const clock = fakeClock();
    const { idp, client } = await setup(clock);
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(5000), clock);
    clock.onSleep = (n) => {
      if (n === 2) idp.denyDevice(signIn.userCode);
    };
    const err = await rejection(signIn.waitForApproval(AbortSignal.timeout(5000)), 'needs_authorization');
    expect(err.message).toMatch(/declined/);
    expect(clock.sleeps).toHaveLength(2);
  });

  it('stops with "expired" when nobody approves while the code lives', async () => {
    const clock = fakeClock();
    const { client } = await setup(clock, { deviceCodeLifetimeSec: 30 });
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(5000), clock);
    const err = await rejection(signIn.waitForApproval(AbortSignal.timeout(5000)), 'needs_authorization');
    expect(err.message).toMatch(/code expired/);
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(30_000);
    expect(clock.sleeps.length).toBeLessThanOrEqual(7);
  });

  it('treats the server saying expired_token and Microsoft\'s authorization_declined as final', async () => {
    for (const [code, words] of [['expired_token', /code expired/], ['authorization_declined', /declined/]] as const) {
      const clock = fakeClock();
      const polled: string[] = [];
      const fake = scriptedClient(['authorization_pending', code], polled);
      const signIn = await startDeviceSignIn(fake, AbortSignal.timeout(5000), clock);
      const err = await rejection(signIn.waitForApproval(AbortSignal.timeout(5000)), 'needs_authorization');
      expect(err.message).toMatch(words);
      expect(polled).toEqual(['authorization_pending', code]);
    }
  });

  it('waits out a failing identity provider while the code lives', async () => {
    const clock = fakeClock();
    const { idp, client } = await setup(clock);
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(5000), clock);
    clock.onSleep = (n) => {
      idp.failMode = n === 1 ? 'http500' : 'none';
      if (n === 2) idp.approveDevice(signIn.userCode, USER);
    };
    const grant = await signIn.waitForApproval(AbortSignal.timeout(5000));
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
  });

  it('cancels at once when the signal aborts, with the real timer', async () => {
    vi.useFakeTimers();
    const clock = fakeClock();
    const { client } = await setup(clock);
    const signIn = await startDeviceSignIn(client, AbortSignal.timeout(60_000), { now: clock.now, sleep: defaultSleep });
    const controller = new AbortController();
    const waiting = signIn.waitForApproval(controller.signal);
    controller.abort();
    await rejection(waiting, 'aborted');
  });
});

/** An OAuth client whose polls answer the given OAuth errors in turn (what the mock does not say). */
function scriptedClient(answers: string[], polled: string[]): OAuthClient {
  const unused = () => Promise.reject(new Error('not used'));
  return {
    tokenUrl: 'https://idp.example/token',
    refreshTokenGrant: unused,
    passwordGrant: unused,
    clientCredentialsGrant: unused,
    authorizationCodeGrant: unused,
    checkAuthorizationResponse: () => new URLSearchParams(),
    deviceAuthorization: async () => ({
      deviceCode: new Secret('dc'), userCode: 'ABCD-EFGH', verificationUri: 'https://idp.example/device', expiresIn: 900, interval: 5,
    }),
    deviceCodeGrant: async () => {
      const code = answers[polled.length] ?? 'authorization_pending';
      polled.push(code);
      const cause = Object.assign(new Error(code), { oauthError: code, oauthText: code });
      throw new ProxyError(code === 'access_denied' ? 'needs_authorization' : 'idp_unavailable', `refused (${code})`, { cause });
    },
  };
}
