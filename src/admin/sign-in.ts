import type { AccountSettings } from '../config/resolve.js';
import { describeError, ProxyError } from '../errors.js';
import { BROWSER_SIGN_IN_TTL_MS } from '../limits.js';
import type { Logger } from '../log.js';
import { startBrowserSignIn, type BrowserSignIn } from '../tokens/browser-flow.js';
import { startDeviceSignIn, type DeviceFlowOptions } from '../tokens/device-flow.js';
import { createOAuthClient, type OAuthClientOptions } from '../tokens/oauth-client.js';
import { chooseSignInMethod, type SignInMethod } from '../tokens/sign-in-method.js';
import type { TokenManager } from '../tokens/types.js';

/**
 * Sign-ins started from the status page. A browser sign-in waits, keyed by its `state`, for the
 * identity provider to send the browser back to /oauth/callback; a device sign-in polls in the
 * background while the page shows its code. Either ends in TokenManager.authorize.
 */

export type StartedSignIn =
  | { method: 'browser'; authorizeUrl: string }
  | { method: 'device'; userCode: string; verificationUri: string; verificationUriComplete?: string | undefined };

/** What the status page shows about an account's sign-in. */
export interface SignInView {
  /** A device code waiting to be typed in. */
  device?: { userCode: string; verificationUri: string; verificationUriComplete?: string | undefined; expiresAt: number } | undefined;
  /** Why the last sign-in did not complete, in plain words. */
  lastError?: string | undefined;
}

export interface SignInService {
  start(username: string, redirectUri: string, method?: SignInMethod): Promise<StartedSignIn>;
  /** Handles /oauth/callback; returns the account that is now authorized. Throws ProxyError. */
  callback(params: URLSearchParams): Promise<string>;
  view(username: string): SignInView;
  close(): void;
}

export interface SignInOptions {
  /** The accounts of the config in force (a reload may add or remove some). */
  accounts: () => readonly AccountSettings[];
  tokens: TokenManager;
  log: Logger;
  now?: (() => number) | undefined;
  oauth?: OAuthClientOptions | undefined;
  device?: DeviceFlowOptions | undefined;
}

interface PendingBrowser {
  account: AccountSettings;
  signIn: BrowserSignIn;
  expiresAt: number;
}

interface PendingDevice {
  view: NonNullable<SignInView['device']>;
  controller: AbortController;
}

export function createSignInService(options: SignInOptions): SignInService {
  const { tokens, log } = options;
  const now = options.now ?? Date.now;
  const byState = new Map<string, PendingBrowser>();
  const devices = new Map<string, PendingDevice>();
  const errors = new Map<string, string>();
  const closing = new AbortController();

  function find(username: string): AccountSettings {
    const account = options.accounts().find((a) => a.username.toLowerCase() === username.toLowerCase());
    if (!account) throw new ProxyError('bad_input', `no account "${username}"`);
    return account;
  }

  function forgetExpired(): void {
    for (const [state, pending] of byState) if (now() >= pending.expiresAt) byState.delete(state);
  }

  async function startBrowser(account: AccountSettings, redirectUri: string): Promise<StartedSignIn> {
    forgetExpired();
    for (const [state, pending] of byState) if (pending.account === account) byState.delete(state); // the newest sign-in wins
    const client = createOAuthClient(account.oauth, options.oauth);
    const signIn = await startBrowserSignIn(client, account.oauth, redirectUri, account.upstreamUsername);
    byState.set(signIn.state, { account, signIn, expiresAt: now() + BROWSER_SIGN_IN_TTL_MS });
    log.info({ event: 'signin.start', account: account.username, method: 'browser' }, 'browser sign-in started');
    return { method: 'browser', authorizeUrl: signIn.authorizeUrl };
  }

  async function startDevice(account: AccountSettings): Promise<StartedSignIn> {
    const key = account.username.toLowerCase();
    devices.get(key)?.controller.abort();
    const client = createOAuthClient(account.oauth, options.oauth);
    const signIn = await startDeviceSignIn(client, closing.signal, options.device);
    const controller = new AbortController();
    const { userCode, verificationUri, verificationUriComplete, expiresAt } = signIn;
    const pending: PendingDevice = { view: { userCode, verificationUri, verificationUriComplete, expiresAt }, controller };
    devices.set(key, pending);
    log.info({ event: 'signin.start', account: account.username, method: 'device' }, 'device sign-in started');
    const drop = () => {
      if (devices.get(key) === pending) devices.delete(key);
    };
    signIn
      .waitForApproval(AbortSignal.any([controller.signal, closing.signal]))
      .finally(drop) // the code is spent either way; the page stops showing it
      .then((grant) => tokens.authorize(account.username, grant))
      .then(
        () => finished(account, undefined),
        (err: unknown) => {
          if (!controller.signal.aborted) finished(account, err);
        },
      );
    return { method: 'device', userCode, verificationUri, verificationUriComplete };
  }

  function finished(account: AccountSettings, err: unknown): void {
    const key = account.username.toLowerCase();
    if (err === undefined) {
      errors.delete(key);
      log.info({ event: 'signin.ok', account: account.username }, 'sign-in completed');
      return;
    }
    const message = err instanceof ProxyError ? err.message : describeError(err);
    errors.set(key, message);
    log.warn({ event: 'signin.fail', account: account.username, error: describeError(err) }, 'sign-in did not complete');
  }

  return {
    async start(username, redirectUri, method) {
      const account = find(username);
      const chosen = chooseSignInMethod(account, method);
      if (!chosen) throw new ProxyError('bad_input', `account ${account.username} cannot sign in${method ? ` with the ${method} method` : ''} (flow ${account.flow})`);
      errors.delete(account.username.toLowerCase());
      return chosen === 'browser' ? startBrowser(account, redirectUri) : startDevice(account);
    },

    async callback(params) {
      forgetExpired();
      const pending = byState.get(params.get('state') ?? '');
      if (!pending) throw new ProxyError('bad_input', 'this sign-in answer belongs to no sign-in in progress (unknown or expired state); start the sign-in again');
      byState.delete(pending.signIn.state);
      try {
        await tokens.authorize(pending.account.username, await pending.signIn.complete(params, closing.signal));
        finished(pending.account, undefined);
        return pending.account.username;
      } catch (err) {
        finished(pending.account, err);
        throw err;
      }
    },

    view(username) {
      const key = username.toLowerCase();
      const device = devices.get(key)?.view;
      return { device: device && now() < device.expiresAt ? device : undefined, lastError: errors.get(key) };
    },

    close() {
      closing.abort(new ProxyError('aborted', 'the admin listener is stopping'));
    },
  };
}
