import { isIP } from 'node:net';
import { z } from 'zod';
import {
  LOGIN_TIMEOUT_MS,
  MAX_CONNECTIONS_PER_ADDRESS,
  MAX_CONNECTIONS_PER_LISTENER,
  PRELOGIN_IDLE_TIMEOUT_MS,
} from '../limits.js';

/**
 * The config file's schema: types, defaults and (later) its JSON Schema come from here.
 * Key names are snake_case like OAuth's own and are an interface (SPEC section 6):
 * add keys freely, rename none without a migration note.
 */

/** "host:port", with IPv6 hosts in brackets: "127.0.0.1:1143", "[::1]:1143", "localhost:1143". */
export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:1143 or [::1]:1143');

const cidr = z.string().refine((v) => {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (!family) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
}, 'expected an IP address or CIDR such as 10.0.0.0/24');

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
  /** SMTP only: accept mail without AUTH from `allow` networks, sent as this account. */
  relay_account: z.string().optional(),
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
  token_url: z.string().url().optional(),
  authorize_url: z.string().url().optional(),
  device_authorization_url: z.string().url().optional(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  client_secret: z.string().optional(),
  /** Extra trust (PEM) for this provider's token endpoint and servers. */
  ca_file: z.string().optional(),
  servers: serversSchema.optional(),
  sasl_mechanism: saslMechanism.optional(),
});

export const accountSchema = z.strictObject({
  /** What the client types; also the upstream user unless upstream_username is set. */
  username: z.string().min(1),
  upstream_username: z.string().min(1).optional(),
  /** Local password: a scrypt hash from `oauth-mail-proxy hash-password`, or the password itself. */
  password_hash: z.string().optional(),
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
});

export const tokenStoreSchema = z.strictObject({
  path: z.string().default('./data/tokens.enc'),
  /** 32-byte key file, created with mode 0600 on first run when absent. */
  key_file: z.string().default('./data/tokens.key'),
  /** Name of an environment variable holding the key (base64 of 32 bytes); wins over key_file. */
  key_env: z.string().optional(),
});

export const configSchema = z.strictObject({
  listeners: z.array(listenerSchema).min(1),
  providers: z.record(z.string(), providerSchema).default({}),
  accounts: z.array(accountSchema).default([]),
  token_store: tokenStoreSchema.default({ path: './data/tokens.enc', key_file: './data/tokens.key' }),
  admin: z.strictObject({ listen: hostPort.default('127.0.0.1:8025') }).optional(),
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
