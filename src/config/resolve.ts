import { isIP } from 'node:net';
import { Secret } from '../secret.js';
import { MICROSOFT_APP_ONLY_SCOPE, isPresetName, presetFor } from './presets.js';
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
}

export interface Config {
  listeners: ListenerConfig[];
  accounts: AccountSettings[];
  tokenStore: { path: string; keyFile: string; keyEnv?: string | undefined };
  admin?: { listen: string } | undefined;
  log: RawConfig['log'];
}

export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Token endpoints must be https, except on a loopback address (the demo and test identity provider). */
export function isAllowedTokenUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'https:') return true;
  if (parsed.protocol !== 'http:') return false;
  const host = parsed.hostname;
  if (LOOPBACK_HOSTS.has(host)) return true;
  return isIP(host) === 4 && host.startsWith('127.');
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
  if (a.password_hash) {
    if (!a.password_hash.startsWith('scrypt$')) {
      issues.push({ path: [...where, 'password_hash'], message: 'expected a hash printed by `oauth-mail-proxy hash-password` (scrypt$...)' });
    }
    return { kind: 'scrypt', hash: a.password_hash };
  }
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
  if (provider && a.flow !== 'static' && a.flow !== 'command') {
    if (!tokenUrl) issues.push({ path: ['providers', a.provider, 'token_url'], message: 'required for this flow' });
    else if (!isAllowedTokenUrl(tokenUrl)) {
      issues.push({ path: ['providers', a.provider, 'token_url'], message: 'must be https (plain http only on a loopback address)' });
    }
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
    },
    saslMechanism: a.sasl_mechanism ?? provider?.sasl_mechanism ?? 'xoauth2',
    servers: {},
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
      break;
  }
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
  });
  return {
    config: {
      listeners: raw.listeners,
      accounts,
      tokenStore: { path: raw.token_store.path, keyFile: raw.token_store.key_file, keyEnv: raw.token_store.key_env },
      admin: raw.admin,
      log: raw.log,
    },
    issues,
  };
}
