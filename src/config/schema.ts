import { isIP } from 'node:net';
import { z } from 'zod';
import { scryptHashProblem } from '../accounts/password.js';
import { parseCidr } from './cidr.js';
import { ENDPOINT_URL_RULE, isAllowedTokenUrl } from './endpoint-url.js';
import { listenProblem } from './listen-address.js';
import {
  LOGIN_TIMEOUT_MS,
  MAX_CONNECTIONS_PER_ADDRESS,
  MAX_CONNECTIONS_PER_LISTENER,
  PRELOGIN_IDLE_TIMEOUT_MS,
  MAX_SMTP_MESSAGE_BYTES,
  MAX_SMTP_RECIPIENTS,
  LOGIN_DELAY_BASE_MS,
  LOGIN_DELAY_MAX_MS,
  LOGIN_FAILURE_WINDOW_MS,
  LOGIN_FREE_FAILURES,
  LOGIN_LOCKOUT_AFTER,
  LOGIN_LOCKOUT_MS,
} from '../limits.js';

/**
 * The config file's schema: types, defaults and (later) its JSON Schema come from here.
 * Key names are snake_case like OAuth's own and are an interface (SPEC section 6):
 * add keys freely, rename none without a migration note.
 */

/** A string refused with the problem `problemOf` names; undefined means the value is fine. */
function checked(problemOf: (value: string) => string | undefined) {
  return (value: string, ctx: z.RefinementCtx): void => {
    const message = problemOf(value);
    if (message) ctx.addIssue({ code: 'custom', message });
  };
}

/**
 * "host:port", with IPv6 hosts in brackets: "127.0.0.1:1143", "[::1]:1143", "localhost:1143".
 * The pattern is the shape editors see; the refinement holds the rules the listeners bind by,
 * so that `check` refuses whatever `serve` would.
 */
export const hostPort = z.string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, { message: 'expected host:port, e.g. 127.0.0.1:1143 or [::1]:1143', abort: true })
  .superRefine(checked(listenProblem));

/**
 * A provider endpoint: client secrets, codes and passwords go there, so https unless loopback.
 * What is no URL at all is left to .url(), which says so once.
 */
const endpointUrl = z.string().url().superRefine(checked((v) => (!URL.canParse(v) || isAllowedTokenUrl(v) ? undefined : ENDPOINT_URL_RULE)));

/** A hash from `oauth-mail-proxy hash-password`: one a login could never verify is refused here. */
const passwordHash = z.string().superRefine(checked(scryptHashProblem));

const cidr = z.string().refine((v) => parseCidr(v) !== undefined, 'expected an IP address or CIDR such as 10.0.0.0/24');

/** A Host name the admin listener answers: `mail-proxy.lan`, `.example.com` (with its subdomains) or an IP address. */
const allowedHost = z.string().refine((v) => {
  const bare = v.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) !== 0 || /^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(v);
}, 'expected a host name such as mail-proxy.lan, .example.com for a domain and its subdomains, or an IP address (no scheme, port or path)');

const clientTls = z.enum(['none', 'starttls', 'implicit']);
const upstreamTls = z.enum(['implicit', 'starttls']);
export const tlsVersion = z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
export const saslMechanism = z.enum(['xoauth2', 'oauthbearer']);
export const protocolName = z.enum(['imap', 'pop3', 'smtp']);
export const flowName = z.enum([
  'static', 'refresh_token', 'password', 'client_credentials', 'device_code', 'authorization_code', 'command',
]);

export const listenerSchema = z.strictObject({
  protocol: protocolName,
  listen: hostPort,
  /** Toward the client. */
  tls: clientTls.default('none'),
  /** PEM files; when tls is not none and these are absent, a self-signed pair is generated on first run. */
  cert_file: z.string().optional(),
  key_file: z.string().optional(),
  min_tls_version: tlsVersion.default('TLSv1.2'),
  /** Only these client addresses may connect (CIDRs). Empty or absent: everyone who can reach the port. */
  allow: z.array(cidr).optional(),
  /**
   * SMTP only: accept mail without AUTH from `allow` networks, sent as this account. On such a
   * listener `allow` names who may relay without AUTH; everyone else may connect but must AUTH.
   */
  relay_account: z.string().optional(),
  /** SMTP only: largest message in bytes (announced with SIZE, RFC 1870). */
  max_message_size: z.number().int().positive().default(MAX_SMTP_MESSAGE_BYTES),
  /** SMTP only: recipients per message. */
  max_recipients: z.number().int().positive().default(MAX_SMTP_RECIPIENTS),
  max_connections: z.number().int().positive().default(MAX_CONNECTIONS_PER_LISTENER),
  max_connections_per_address: z.number().int().positive().default(MAX_CONNECTIONS_PER_ADDRESS),
  /** Seconds from connect to a successful login. */
  login_timeout: z.number().positive().default(LOGIN_TIMEOUT_MS / 1000),
  /** Seconds of silence allowed before login. */
  idle_timeout: z.number().positive().default(PRELOGIN_IDLE_TIMEOUT_MS / 1000),
});

export const serverSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  tls: upstreamTls.default('implicit'),
  /** Extra trust (PEM) for this server, added to the system CAs. */
  ca_file: z.string().optional(),
  /** TLS server name (SNI and certificate check); defaults to host. */
  servername: z.string().optional(),
  /** Turns certificate verification off. Loudly logged; for lab setups only. */
  tls_insecure_skip_verify: z.boolean().default(false),
});

const serversSchema = z.strictObject({
  imap: serverSchema.optional(),
  pop3: serverSchema.optional(),
  smtp: serverSchema.optional(),
});

export const providerSchema = z.strictObject({
  /** Start from a built-in preset; implied when the provider is named google or microsoft. */
  preset: z.enum(['google', 'microsoft']).optional(),
  /** Microsoft tenant (id or domain); default "common", or "organizations" style values. */
  tenant: z.string().optional(),
  token_url: endpointUrl.optional(),
  authorize_url: endpointUrl.optional(),
  device_authorization_url: endpointUrl.optional(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  /** Extra trust (PEM) for this provider's token endpoint and servers. */
  ca_file: z.string().optional(),
  /** Seconds a token endpoint call may take before it counts as a temporary failure (default 20). */
  token_timeout: z.number().positive().optional(),
  servers: serversSchema.optional(),
  sasl_mechanism: saslMechanism.optional(),
});

export const accountSchema = z.strictObject({
  /** What the client types; also the upstream user unless upstream_username is set. */
  username: z.string().min(1),
  upstream_username: z.string().min(1).optional(),
  /** Local password: a scrypt hash from `oauth-mail-proxy hash-password`, or the password itself. */
  password_hash: passwordHash.optional(),
  password: z.string().optional(),
  provider: z.string().min(1),
  tenant: z.string().optional(),
  flow: flowName,
  /** static flow: the access token, and optionally when it expires (ISO 8601). */
  access_token: z.string().optional(),
  access_token_expires_at: z.string().datetime({ offset: true }).optional(),
  /** refresh_token flow: the first refresh token; the token store keeps the current one. */
  refresh_token: z.string().optional(),
  /** command flow: argv (preferred) or a shell command line; stdout is the token. */
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
  /** Per-account overrides of the provider's values. */
  scope: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  sasl_mechanism: saslMechanism.optional(),
  /** SMTP: keep the client's envelope sender, or rewrite it to this account's address (Microsoft 365 refuses foreign senders). */
  sender_policy: z.enum(['keep', 'rewrite']).default('keep'),
  /** SMTP: also rewrite the message's From header to this account's address, keeping the display name. */
  rewrite_from_header: z.boolean().default(false),
});

export const tokenStoreSchema = z.strictObject({
  path: z.string().default('./data/tokens.enc'),
  /** 32-byte key file, created with mode 0600 on first run when absent. */
  key_file: z.string().default('./data/tokens.key'),
  /** Name of an environment variable holding the key (base64 of 32 bytes); wins over key_file. */
  key_env: z.string().optional(),
});

/**
 * The admin HTTP listener: /healthz, /metrics and the status page with its Sign in buttons.
 * Localhost by default; any other address needs a password (HTTP Basic) or a bearer token.
 */
export const adminSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:8025'),
  /** HTTP Basic user name for `password` / `password_hash`. */
  username: z.string().min(1).default('admin'),
  password: z.string().min(1).optional(),
  /** A hash printed by `oauth-mail-proxy hash-password`. */
  password_hash: passwordHash.optional(),
  /** For scrapers and scripts: `Authorization: Bearer <token>`. */
  bearer_token: z.string().min(16, 'use at least 16 characters').optional(),
  /** Where browsers reach the admin listener (behind a reverse proxy); the OAuth redirect is <public_url>/oauth/callback. */
  public_url: z.string().url().optional(),
  /**
   * Host names browsers may use to reach the admin listener, besides IP addresses, localhost
   * and public_url's host (always allowed). Requests naming any other host are refused with
   * 421, so that a web page cannot reach the listener by pointing its own name at this
   * machine (DNS rebinding). `.example.com` allows the domain and all its subdomains; ports
   * are not compared. List only names whose DNS you control.
   */
  allowed_hosts: z.array(allowedHost).default([]),
});

/** A command (argv, or a /bin/sh -c line) and/or a webhook URL, told of an event. Never given a token. */
export const hookSchema = z.strictObject({
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
  url: z.string().url().optional(),
});

export const hooksSchema = z.strictObject({
  /** Called once each time an account enters "needs authorization", with the account and the reason. */
  needs_authorization: hookSchema.optional(),
});

/**
 * Repeated login failures from one client address (IPv6: its /64), SPEC section 4: the first
 * `free_failures` are answered at once, later ones after `delay` seconds, doubling up to
 * `max_delay`; `lockout_after` failures within `window` seconds refuse the address for `lockout`
 * seconds. The right password from another address is never affected.
 */
export const loginThrottleSchema = z.strictObject({
  free_failures: z.number().int().min(0).default(LOGIN_FREE_FAILURES),
  delay: z.number().min(0).default(LOGIN_DELAY_BASE_MS / 1000),
  max_delay: z.number().min(0).default(LOGIN_DELAY_MAX_MS / 1000),
  lockout_after: z.number().int().positive().default(LOGIN_LOCKOUT_AFTER),
  lockout: z.number().positive().default(LOGIN_LOCKOUT_MS / 1000),
  window: z.number().positive().default(LOGIN_FAILURE_WINDOW_MS / 1000),
});

export const configSchema = z.strictObject({
  listeners: z.array(listenerSchema).min(1),
  providers: z.record(z.string(), providerSchema).default({}),
  accounts: z.array(accountSchema).default([]),
  token_store: tokenStoreSchema.default({ path: './data/tokens.enc', key_file: './data/tokens.key' }),
  admin: adminSchema.optional(),
  hooks: hooksSchema.optional(),
  login_throttle: loginThrottleSchema.optional(),
  /** Seconds that sessions get to finish on SIGTERM before they are cut off (default 10). */
  shutdown_timeout: z.number().positive().optional(),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      format: z.enum(['json', 'pretty']).optional(),
    })
    .default({ level: 'info' }),
});

export type RawConfig = z.output<typeof configSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type ServerConfig = z.output<typeof serverSchema>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type AccountConfigRaw = z.output<typeof accountSchema>;
export type Protocol = z.output<typeof protocolName>;
export type Flow = z.output<typeof flowName>;
export type SaslMechanism = z.output<typeof saslMechanism>;
export type TlsVersion = z.output<typeof tlsVersion>;
export type AdminConfig = z.output<typeof adminSchema>;
export type HooksConfig = z.output<typeof hooksSchema>;
export type LoginThrottleConfig = z.output<typeof loginThrottleSchema>;
