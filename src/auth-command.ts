import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { loadConfigFile } from './config/load.js';
import type { AccountSettings, AdminSettings, Config } from './config/resolve.js';
import { describeError, isProxyError, ProxyError } from './errors.js';
import { BROWSER_SIGN_IN_TTL_MS } from './limits.js';
import { createLogger } from './log.js';
import { openFileStore } from './store/file-store.js';
import { startBrowserSignIn } from './tokens/browser-flow.js';
import { startDeviceSignIn } from './tokens/device-flow.js';
import { startRedirectListener, type CallbackAnswer } from './tokens/loopback-redirect.js';
import { createTokenManager } from './tokens/manager.js';
import { createOAuthClient } from './tokens/oauth-client.js';
import { chooseSignInMethod, signInMethods, type SignInMethod } from './tokens/sign-in-method.js';
import type { TokenGrant } from './tokens/types.js';

/**
 * `oauth-mail-proxy auth ACCOUNT`: the account's interactive sign-in in a terminal. Device code:
 * prints the URL and the code, polls until approved. Browser: prints the sign-in link, waits on
 * a loopback port of its own (RFC 8252) for the identity provider's redirect, or for the address
 * the browser landed on to be pasted (a browser on another machine cannot reach our loopback).
 * Then the tokens go to the token store and it exits 0.
 *
 * A running proxy keeps the store in memory and writes it whole, so a grant stored behind its
 * back would be overwritten: when the config's admin listener answers, this refuses and points
 * to the status page's Sign in button (or: stop the proxy, run auth, start it).
 */

export interface AuthCommandOptions {
  configPath: string;
  username: string | undefined;
  method?: SignInMethod | undefined;
  /** Loopback port for the browser method (default: any free one). */
  port?: number | undefined;
  out?: Writable | undefined;
  input?: Readable | undefined;
}

export async function runAuthCommand(options: AuthCommandOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const say = (text: string) => void out.write(`${text}\n`);
  if (!options.username) {
    process.stderr.write('usage: oauth-mail-proxy auth ACCOUNT [-c config.yaml] [--method browser|device] [--port N]\n');
    return 2;
  }
  const config = loadConfigFile(options.configPath);
  const account = config.accounts.find((a) => a.username.toLowerCase() === options.username!.toLowerCase());
  if (!account) throw new ProxyError('bad_input', `no account "${options.username}" in ${options.configPath}`);
  const method = chooseSignInMethod(account, options.method);
  if (!method) throw new ProxyError('bad_input', cannotSignIn(account, options.method));
  const running = await runningAdmin(config.admin);
  if (running) {
    throw new ProxyError('bad_input', `a proxy is running with this config (admin listener ${running}): use Sign in on its status page, or stop it, run auth, and start it again (it keeps the token store in memory and would overwrite a grant stored now)`);
  }
  const controller = new AbortController();
  const cancel = () => controller.abort(new ProxyError('aborted', 'cancelled'));
  process.once('SIGINT', cancel);
  try {
    const grant = method === 'device' ? await signInWithCode(account, say, controller.signal) : await signInWithBrowser(account, options, say, controller.signal);
    await storeGrant(config, account, grant);
    say(`Signed in: the tokens of ${account.username} are stored in ${config.tokenStore.path}.`);
    return 0;
  } catch (err) {
    if (isProxyError(err, 'aborted')) {
      say('Sign-in cancelled.');
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', cancel);
  }
}

function cannotSignIn(account: AccountSettings, wanted: SignInMethod | undefined): string {
  const available = signInMethods(account);
  if (available.length === 0) return `account ${account.username} (flow ${account.flow}) has no interactive sign-in: it needs flow device_code or authorization_code, a client_id, and the provider's device_authorization_url or authorize_url`;
  return `account ${account.username} cannot use --method ${wanted ?? ''}; it can use: ${available.join(', ')}`;
}

/** The admin listener's URL when something answers its /healthz, else undefined. */
async function runningAdmin(admin: AdminSettings | undefined): Promise<string | undefined> {
  if (!admin) return undefined;
  const split = admin.listen.lastIndexOf(':');
  const host = admin.listen.slice(0, split).replace(/^0\.0\.0\.0$/, '127.0.0.1').replace(/^\[::\]$/, '[::1]');
  const url = `http://${host}:${admin.listen.slice(split + 1)}/`;
  if (admin.listen.endsWith(':0')) return undefined;
  try {
    const res = await fetch(`${url}healthz`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return url;
  } catch {
    return undefined;
  }
}

async function storeGrant(config: Config, account: AccountSettings, grant: TokenGrant): Promise<void> {
  const store = await openFileStore(config.tokenStore, process.env);
  const log = createLogger({ level: 'warn', format: config.log.format, destination: process.stderr });
  const tokens = createTokenManager({ accounts: config.accounts, store, log });
  try {
    await tokens.authorize(account.username, grant);
  } finally {
    await tokens.stop();
    await store.close();
  }
}

async function signInWithCode(account: AccountSettings, say: (text: string) => void, signal: AbortSignal): Promise<TokenGrant> {
  const signIn = await startDeviceSignIn(createOAuthClient(account.oauth), signal);
  const minutes = Math.max(1, Math.round((signIn.expiresAt - Date.now()) / 60_000));
  say(`To sign in ${account.username}, open\n\n    ${signIn.verificationUri}\n\nand enter the code\n\n    ${signIn.userCode}\n`);
  if (signIn.verificationUriComplete) say(`(or open ${signIn.verificationUriComplete} directly)`);
  say(`The code expires in ${minutes} minutes. Waiting for the sign-in... (Ctrl-C cancels)`);
  return signIn.waitForApproval(signal);
}

const PAGE = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font:16px system-ui;margin:4rem auto;max-width:32rem"><h1>${title}</h1><p>${text}</p>`;

async function signInWithBrowser(account: AccountSettings, options: AuthCommandOptions, say: (text: string) => void, signal: AbortSignal): Promise<TokenGrant> {
  const client = createOAuthClient(account.oauth);
  let outcome!: { resolve: (g: TokenGrant) => void; reject: (e: unknown) => void };
  const done = new Promise<TokenGrant>((resolve, reject) => (outcome = { resolve, reject }));
  done.catch(() => undefined); // raceAbort reports it; after a timeout nobody listens
  let complete: (params: URLSearchParams) => Promise<CallbackAnswer> = async () => ({ status: 503, html: PAGE('Not ready', 'Try again.') });
  const listener = await startRedirectListener({ port: options.port, handle: (params) => complete(params) });
  const lines = createInterface({ input: options.input ?? process.stdin, terminal: false });
  try {
    const signIn = await startBrowserSignIn(client, account.oauth, listener.redirectUri, account.upstreamUsername);
    complete = async (params) => {
      try {
        outcome.resolve(await signIn.complete(params, signal));
        return { status: 200, html: PAGE('Signed in', `The proxy now holds a grant for ${account.username}. You can close this tab.`) };
      } catch (err) {
        // A stray or forged request must not end the sign-in; a real refusal does.
        if (!isProxyError(err, 'bad_input')) outcome.reject(err);
        say(`That answer was not accepted: ${describeError(err)}`);
        return { status: 400, html: PAGE('Sign-in did not complete', isProxyError(err) ? err.message : 'see the terminal') };
      }
    };
    lines.on('line', (line) => void pasted(line, listener.redirectUri, complete));
    const port = new URL(listener.redirectUri).port;
    say(`To sign in ${account.username}, open this link in a browser:\n\n    ${signIn.authorizeUrl}\n`);
    say(`After you approve, the browser is sent to ${listener.redirectUri}.`);
    say(`If the browser runs on another machine, either forward the port first (ssh -L ${port}:127.0.0.1:${port} this-host),`);
    say('or paste here the address the browser ends up on (the page will not load; its address is what counts).');
    say('Waiting for the sign-in... (Ctrl-C cancels)');
    const timeout = AbortSignal.timeout(BROWSER_SIGN_IN_TTL_MS);
    return await raceAbort(done, AbortSignal.any([signal, timeout]));
  } finally {
    lines.close();
    await listener.close();
  }
}

/** A pasted callback address counts like the redirect itself. */
async function pasted(line: string, redirectUri: string, complete: (params: URLSearchParams) => Promise<CallbackAnswer>): Promise<void> {
  const text = line.trim();
  if (!text) return;
  let url: URL;
  try {
    url = new URL(text, redirectUri);
  } catch {
    return;
  }
  if (url.searchParams.has('state')) await complete(url.searchParams);
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof ProxyError ? signal.reason : new ProxyError('needs_authorization', 'nobody completed the sign-in in time; run auth again'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
