import { isIP } from 'node:net';
import { Secret } from '../secret.js';
import { MICROSOFT_APP_ONLY_SCOPE, isPresetName, presetFor } from './presets.js';
import { parseCidr, tooWideForRelay } from './cidr.js';
import { splitListen } from './listen-address.js';
import type {
  AccountConfigRaw, Flow, ListenerConfig, Protocol, ProviderConfig, RawConfig, SaslMechanism, ServerConfig,
} from './schema.js';

/** Where the proxy gets tokens for an account: its OAuth 2.0 client and endpoints. */
export interface OAuthClientSettings {
  tokenUrl: string;
  authorizeUrl?: string | undefined;
  deviceAuthorizationUrl?: string | undefined;
  clientId?: string | undefined;
  clientSecret?: Secret | undefined;
  scope?: string | undefined;
  /** Extra trust (PEM path) for the token endpoint. */
  caFile?: string | undefined;
  /** A token endpoint call's time limit; default TOKEN_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
}

export interface UpstreamServer {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls';
  caFile?: string | undefined;
  servername?: string | undefined;
  insecureSkipVerify: boolean;
}

/** How a local login is checked. `provider`: the ROPC flow, where the typed password is the real one. */
export type LocalPassword =
  | { kind: 'scrypt'; hash: string }
  | { kind: 'plain'; value: Secret }
  | { kind: 'provider' };

export interface AccountSettings {
  /** What the client types. */
  username: string;
  /** Who we log in as upstream. */
  upstreamUsername: string;
  providerName: string;
  flow: Flow;
  localPassword: LocalPassword;
  oauth: OAuthClientSettings;
  saslMechanism: SaslMechanism;
  servers: Partial<Record<Protocol, UpstreamServer>>;
  /** static flow. */
  staticToken?: { value: Secret; expiresAt?: number | undefined } | undefined;
  /** refresh_token flow: the configured first refresh token (the store keeps the current one). */
  refreshTokenSeed?: Secret | undefined;
  /** command flow: argv, or a string run by /bin/sh -c. */
  command?: string | string[] | undefined;
  /** SMTP: `rewrite` sends every message with this account's address as envelope sender. Default keep. */
  senderPolicy?: 'keep' | 'rewrite' | undefined;
  /** SMTP: rewrite the header From to this account's address too, keeping the display name. */
  rewriteFromHeader?: boolean | undefined;
}

export interface Config {
  listeners: ListenerConfig[];
  accounts: AccountSettings[];
  tokenStore: { path: string; keyFile: string; keyEnv?: string | undefined };
  admin?: AdminSettings | undefined;
  hooks?: HookSettings | undefined;
  /** Repeated login failures per address (accounts/throttle.ts); undefined: the defaults. */
  loginThrottle?: LoginThrottleSettings | undefined;
  /** How long sessions get on SIGTERM; undefined: SHUTDOWN_DEADLINE_MS. */
  shutdownTimeoutMs?: number | undefined;
  log: RawConfig['log'];
}

/** `login_throttle` in milliseconds, as accounts/throttle.ts takes it. */
export interface LoginThrottleSettings {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  lockoutAfter: number;
  lockoutMs: number;
  windowMs: number;
}

/** The admin listener (admin/server.ts). */
export interface AdminSettings {
  listen: string;
  username: string;
  password?: Secret | undefined;
  /** scrypt hash from `hash-password`. */
  passwordHash?: string | undefined;
  bearerToken?: Secret | undefined;
  /** Where browsers reach the admin listener, e.g. https://mail-proxy.example.com/admin. */
  publicUrl?: string | undefined;
  /** `allowed_hosts`: names answered besides IP literals, localhost and publicUrl's host (admin/host-check.ts). */
  allowedHosts?: readonly string[] | undefined;
}

export interface HookTarget {
  command?: string | string[] | undefined;
  url?: string | undefined;
}

export interface HookSettings {
  needsAuthorization?: HookTarget | undefined;
}

export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

function toServer(s: ServerConfig, providerCa: string | undefined): UpstreamServer {
  return {
    host: s.host,
    port: s.port,
    tls: s.tls,
    caFile: s.ca_file ?? providerCa,
    servername: s.servername,
    insecureSkipVerify: s.tls_insecure_skip_verify,
  };
}

function providerFor(raw: RawConfig, account: AccountConfigRaw): ProviderConfig | undefined {
  const configured = raw.providers[account.provider];
  const presetName = configured?.preset ?? (isPresetName(account.provider) ? account.provider : undefined);
  if (!configured && !presetName) return undefined;
  if (!presetName) return configured;
  const preset = presetFor(presetName, account.tenant ?? configured?.tenant ?? 'common');
  const merged: ProviderConfig = {
    ...configured,
    token_url: configured?.token_url ?? preset.token_url,
    authorize_url: configured?.authorize_url ?? preset.authorize_url,
    device_authorization_url: configured?.device_authorization_url ?? preset.device_authorization_url,
    scope: configured?.scope ?? preset.scope,
    servers: {
      imap: configured?.servers?.imap ?? { ...preset.servers.imap, tls_insecure_skip_verify: false },
      pop3: configured?.servers?.pop3 ?? { ...preset.servers.pop3, tls_insecure_skip_verify: false },
      smtp: configured?.servers?.smtp ?? { ...preset.servers.smtp, tls_insecure_skip_verify: false },
    },
  };
  return merged;
}

function localPasswordFor(a: AccountConfigRaw, where: (string | number)[], issues: ConfigIssue[]): LocalPassword {
  if (a.flow === 'password') {
    if (a.password_hash || a.password) {
      issues.push({ path: where, message: 'flow "password" uses the typed password as the real one; remove password_hash/password' });
    }
    return { kind: 'provider' };
  }
  // The schema has checked the hash's shape and parameters (accounts/password.ts).
  if (a.password_hash) return { kind: 'scrypt', hash: a.password_hash };
  if (a.password) return { kind: 'plain', value: new Secret(a.password) };
  issues.push({ path: where, message: 'needs a local password: password_hash, password or password_file' });
  return { kind: 'scrypt', hash: '' };
}

function resolveAccount(raw: RawConfig, a: AccountConfigRaw, index: number, issues: ConfigIssue[]): AccountSettings {
  const where: (string | number)[] = ['accounts', index];
  const provider = providerFor(raw, a);
  if (!provider) {
    issues.push({ path: [...where, 'provider'], message: `unknown provider "${a.provider}": use google, microsoft or a name under providers` });
  }
  const tokenUrl = provider?.token_url ?? '';
  // The schema already refused a plain-http endpoint (endpoint-url.ts); presets are all https.
  if (provider && a.flow !== 'static' && a.flow !== 'command' && !tokenUrl) {
    issues.push({ path: ['providers', a.provider, 'token_url'], message: 'required for this flow' });
  }
  const clientSecret = a.client_secret ?? provider?.client_secret;
  let scope = a.scope ?? provider?.scope;
  if (a.flow === 'client_credentials' && !a.scope && (provider?.preset === 'microsoft' || a.provider === 'microsoft')) {
    scope = MICROSOFT_APP_ONLY_SCOPE;
  }
  const settings: AccountSettings = {
    username: a.username,
    upstreamUsername: a.upstream_username ?? a.username,
    providerName: a.provider,
    flow: a.flow,
    localPassword: localPasswordFor(a, where, issues),
    oauth: {
      tokenUrl,
      authorizeUrl: provider?.authorize_url,
      deviceAuthorizationUrl: provider?.device_authorization_url,
      clientId: a.client_id ?? provider?.client_id,
      clientSecret: clientSecret ? new Secret(clientSecret) : undefined,
      scope,
      caFile: provider?.ca_file,
      timeoutMs: provider?.token_timeout === undefined ? undefined : provider.token_timeout * 1000,
    },
    saslMechanism: a.sasl_mechanism ?? provider?.sasl_mechanism ?? 'xoauth2',
    servers: {},
    senderPolicy: a.sender_policy,
    rewriteFromHeader: a.rewrite_from_header,
  };
  for (const protocol of ['imap', 'pop3', 'smtp'] as const) {
    const s = provider?.servers?.[protocol];
    if (s) settings.servers[protocol] = toServer(s, provider?.ca_file);
  }
  checkFlowKeys(a, settings, where, issues);
  return settings;
}

function checkFlowKeys(a: AccountConfigRaw, s: AccountSettings, where: (string | number)[], issues: ConfigIssue[]): void {
  switch (a.flow) {
    case 'static':
      if (!a.access_token) issues.push({ path: where, message: 'flow "static" needs access_token or access_token_file' });
      else {
        s.staticToken = {
          value: new Secret(a.access_token),
          expiresAt: a.access_token_expires_at ? Date.parse(a.access_token_expires_at) : undefined,
        };
      }
      break;
    case 'refresh_token':
      // Without a seed the account starts as "needs authorization" unless the store holds a token.
      if (a.refresh_token) s.refreshTokenSeed = new Secret(a.refresh_token);
      if (!s.oauth.clientId) issues.push({ path: where, message: 'flow "refresh_token" needs a client_id (on the account or its provider)' });
      break;
    case 'password':
      if (!s.oauth.clientId) issues.push({ path: where, message: 'flow "password" needs a client_id (on the account or its provider)' });
      break;
    case 'client_credentials':
      if (!s.oauth.clientId || !s.oauth.clientSecret) {
        issues.push({ path: where, message: 'flow "client_credentials" needs client_id and client_secret (or client_secret_file)' });
      }
      break;
    case 'command':
      if (!a.command) issues.push({ path: where, message: 'flow "command" needs command' });
      s.command = a.command;
      break;
    case 'device_code':
    case 'authorization_code':
      if (!s.oauth.clientId) issues.push({ path: where, message: `flow "${a.flow}" needs a client_id (on the account or its provider)` });
      checkSignInEndpoint(a, s, where, issues);
      break;
  }
}

/**
 * SMTP relay mode (SPEC section 4): mail without AUTH from the `allow` networks only, sent as a
 * configured account. Never an open relay: `allow` must be given and must not be everyone.
 */
function checkRelay(l: ListenerConfig, index: number, accounts: AccountSettings[], issues: ConfigIssue[]): void {
  const where = ['listeners', index];
  const account = accounts.find((a) => a.username.toLowerCase() === l.relay_account?.toLowerCase());
  if (!account) issues.push({ path: [...where, 'relay_account'], message: `no account "${l.relay_account}" under accounts` });
  else if (account.flow === 'password') {
    issues.push({ path: [...where, 'relay_account'], message: 'a flow "password" account needs its password at every login, so it cannot send without AUTH' });
  }
  if (!l.allow || l.allow.length === 0) {
    issues.push({ path: [...where, 'allow'], message: 'relay_account needs allow: the networks that may send without AUTH (never an open relay)' });
  } else {
    l.allow.forEach((text, i) => {
      const cidr = parseCidr(text);
      const problem = cidr && tooWideForRelay(cidr);
      if (problem) issues.push({ path: [...where, 'allow', i], message: problem });
    });
  }
}

/** The interactive flows need their endpoint; Google's device flow refuses mail scopes. */
function checkSignInEndpoint(a: AccountConfigRaw, s: AccountSettings, where: (string | number)[], issues: ConfigIssue[]): void {
  if (a.flow === 'authorization_code' && !s.oauth.authorizeUrl) {
    issues.push({ path: ['providers', a.provider, 'authorize_url'], message: 'required for flow "authorization_code"' });
  }
  if (a.flow === 'device_code' && !s.oauth.deviceAuthorizationUrl) {
    const google = s.oauth.tokenUrl.startsWith('https://oauth2.googleapis.com/');
    const message = google
      ? 'Google\'s device flow does not allow the mail scope: use flow "authorization_code" (browser sign-in)'
      : 'required for flow "device_code"';
    issues.push({ path: google ? [...where, 'flow'] : ['providers', a.provider, 'device_authorization_url'], message });
  }
}

/** True when a `host:port` binds to a loopback address only (so nobody else can reach it). */
export function isLoopbackListen(listen: string): boolean {
  const parsed = splitListen(listen);
  if ('problem' in parsed) return false;
  const { host } = parsed;
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function resolveAdmin(a: NonNullable<RawConfig['admin']>, issues: ConfigIssue[]): AdminSettings {
  if (a.password && a.password_hash) issues.push({ path: ['admin'], message: 'set either password or password_hash, not both' });
  const settings: AdminSettings = {
    listen: a.listen,
    username: a.username,
    password: a.password ? new Secret(a.password) : undefined,
    passwordHash: a.password_hash,
    bearerToken: a.bearer_token ? new Secret(a.bearer_token) : undefined,
    publicUrl: a.public_url?.replace(/\/+$/, ''),
    allowedHosts: a.allowed_hosts,
  };
  if (!isLoopbackListen(a.listen) && !hasAdminCredentials(settings)) {
    issues.push({ path: ['admin', 'listen'], message: `${a.listen} is reachable from other machines: set admin.password (or password_hash) or admin.bearer_token first` });
  }
  return settings;
}

export function hasAdminCredentials(admin: AdminSettings): boolean {
  return admin.password !== undefined || admin.passwordHash !== undefined || admin.bearerToken !== undefined;
}

function resolveLoginThrottle(t: NonNullable<RawConfig['login_throttle']>): LoginThrottleSettings {
  return {
    freeFailures: t.free_failures,
    baseDelayMs: t.delay * 1000,
    maxDelayMs: t.max_delay * 1000,
    lockoutAfter: t.lockout_after,
    lockoutMs: t.lockout * 1000,
    windowMs: t.window * 1000,
  };
}

/** Turns the validated file into the settings the proxy runs on, collecting every problem. */
export function resolveConfig(raw: RawConfig): { config: Config; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  const accounts = raw.accounts.map((a, i) => {
    const key = a.username.toLowerCase();
    if (seen.has(key)) issues.push({ path: ['accounts', i, 'username'], message: `duplicate of accounts[${seen.get(key)}]` });
    seen.set(key, i);
    return resolveAccount(raw, a, i, issues);
  });
  raw.listeners.forEach((l, i) => {
    if (l.relay_account !== undefined && l.protocol !== 'smtp') {
      issues.push({ path: ['listeners', i, 'relay_account'], message: 'only smtp listeners relay without login' });
    }
    if ((l.cert_file === undefined) !== (l.key_file === undefined)) {
      issues.push({ path: ['listeners', i], message: 'cert_file and key_file go together' });
    }
    if (l.relay_account !== undefined) checkRelay(l, i, accounts, issues);
  });
  return {
    config: {
      listeners: raw.listeners,
      accounts,
      tokenStore: { path: raw.token_store.path, keyFile: raw.token_store.key_file, keyEnv: raw.token_store.key_env },
      admin: raw.admin ? resolveAdmin(raw.admin, issues) : undefined,
      hooks: raw.hooks?.needs_authorization ? { needsAuthorization: raw.hooks.needs_authorization } : undefined,
      loginThrottle: raw.login_throttle ? resolveLoginThrottle(raw.login_throttle) : undefined,
      shutdownTimeoutMs: raw.shutdown_timeout === undefined ? undefined : raw.shutdown_timeout * 1000,
      log: raw.log,
    },
    issues,
  };
}
