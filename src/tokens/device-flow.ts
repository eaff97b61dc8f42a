import { ProxyError } from '../errors.js';
import { oauthErrorCode, oauthErrorText, type DeviceAuthorization, type OAuthClient } from './oauth-client.js';
import type { TokenGrant } from './types.js';

/**
 * RFC 8628, the device authorization grant: ask for a device code and a short user code, show
 * the person where to type it, then poll the token endpoint until they have signed in. Used by
 * `oauth-mail-proxy auth` and the status page; the resulting grant goes to TokenManager.authorize.
 */

/** RFC 8628 section 3.5: each `slow_down` adds 5 seconds to the polling interval. */
const SLOW_DOWN_STEP_SEC = 5;

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface DeviceFlowOptions {
  /** Injected by tests (a fake clock that moves when `sleep` is called). */
  now?: (() => number) | undefined;
  sleep?: Sleep | undefined;
}

/** What to show the person, and the polling that waits for them. */
export interface DeviceSignIn {
  userCode: string;
  verificationUri: string;
  /** The URI with the code already in it (RFC 8628 section 3.3.1), when the server offers one. */
  verificationUriComplete?: string | undefined;
  /** Epoch ms after which the code is dead. */
  expiresAt: number;
  /** Polls until the person approves (the grant), denies, or the code expires (ProxyError). */
  waitForApproval(signal: AbortSignal): Promise<TokenGrant>;
}

export const defaultSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

function abortError(signal: AbortSignal): ProxyError {
  return new ProxyError('aborted', 'the sign-in was cancelled', { cause: signal.reason });
}

/** Terminal answers from the token endpoint while polling, in plain words. */
function finalError(code: string | undefined, err: unknown): ProxyError | undefined {
  switch (code) {
    case 'access_denied':
    case 'authorization_declined': // Microsoft's word for the same thing
      return new ProxyError('needs_authorization', 'the sign-in was declined at the identity provider; start it again to retry', { cause: err });
    case 'expired_token':
      return new ProxyError('needs_authorization', 'the code expired before the sign-in was completed; start it again', { cause: err });
    case 'bad_verification_code': // Microsoft: the device code is not known
    case 'invalid_grant':
      return new ProxyError('needs_authorization', `the identity provider refused the device code (${oauthErrorText(err) ?? code})`, { cause: err });
    default:
      return undefined;
  }
}

/** Starts a device sign-in: one request to the device authorization endpoint. */
export async function startDeviceSignIn(client: OAuthClient, signal: AbortSignal, options: DeviceFlowOptions = {}): Promise<DeviceSignIn> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const auth: DeviceAuthorization = await client.deviceAuthorization(signal);
  const expiresAt = now() + auth.expiresIn * 1000;
  return {
    userCode: auth.userCode,
    verificationUri: auth.verificationUri,
    verificationUriComplete: auth.verificationUriComplete,
    expiresAt,
    waitForApproval: (waitSignal) => pollForGrant(client, auth, expiresAt, { now, sleep, signal: waitSignal }),
  };
}

interface PollContext {
  now: () => number;
  sleep: Sleep;
  signal: AbortSignal;
}

/**
 * RFC 8628 section 3.4/3.5: wait `interval`, poll, repeat. `authorization_pending` keeps
 * waiting, `slow_down` waits 5 s longer from then on, a temporary failure of the identity
 * provider (network, 5xx) is waited out too, as long as the code lives.
 */
async function pollForGrant(client: OAuthClient, auth: DeviceAuthorization, expiresAt: number, ctx: PollContext): Promise<TokenGrant> {
  let intervalSec = auth.interval;
  for (;;) {
    await ctx.sleep(intervalSec * 1000, ctx.signal);
    if (ctx.now() >= expiresAt) throw finalError('expired_token', null)!;
    try {
      return await client.deviceCodeGrant(auth.deviceCode, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const code = oauthErrorCode(err);
      if (code === 'slow_down') intervalSec += SLOW_DOWN_STEP_SEC;
      else if (code === 'authorization_pending') continue;
      else {
        const final = finalError(code, err);
        if (final) throw final;
        if (!(err instanceof ProxyError) || err.code !== 'idp_unavailable' || code !== undefined) throw err;
        // The identity provider is unreachable or failing for now: keep polling while the code lives.
      }
    }
  }
}
