import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the end-to-end servers are: the env.json that test/e2e/servers/up.sh writes, and a
 * client for the mock identity provider's control port (mint, revoke, count, change lifetime).
 */

export interface E2eEnv {
  dir: string;
  caFile: string;
  serverHost: string;
  ports: {
    imaps: number; imap: number; pop3s: number; pop3: number;
    submission: number; submissions: number; idp: number; idpControl: number;
  };
  idp: { url: string; tokenUrl: string; introspectionUrl: string; controlUrl: string; clientId: string; clientSecret: string };
  users: string[];
  mailDir: string;
  bigMessageBytes: number;
  logs: { dovecot: string; postfix: string; idp: string };
  tlsDir: string;
}

export const E2E_DIR = process.env.E2E_DIR ?? '/tmp/omp-e2e';

let cached: E2eEnv | undefined;

export function e2eEnv(): E2eEnv {
  if (cached) return cached;
  const raw = JSON.parse(readFileSync(join(E2E_DIR, 'env.json'), 'utf8')) as Omit<E2eEnv, 'tlsDir'>;
  cached = { ...raw, tlsDir: join(raw.dir, 'tls') };
  return cached;
}

/** One request as the mock identity provider logged it (no secrets). */
export interface IdpRequest {
  endpoint: string;
  grantType?: string;
  clientId?: string;
  at: number;
  status: number;
  error?: string;
}

async function control<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${e2eEnv().idp.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`mock IdP control ${path}: ${res.status} ${json.error ?? ''}`);
  return json;
}

export const idpControl = {
  /** A refresh token for `username`, usable by any client (the seed of a proxy account). */
  refreshToken: async (username: string) => (await control<{ refresh_token: string }>('POST', '/refresh-token', { username })).refresh_token,
  accessToken: async (username: string, lifetime?: number) =>
    (await control<{ access_token: string }>('POST', '/access-token', { username, lifetime })).access_token,
  revokeToken: async (token: string) => (await control<{ revoked: number }>('POST', '/revoke', { token })).revoked,
  /** Every refresh and access token of the user. */
  revokeUser: async (username: string) => (await control<{ revoked: number }>('POST', '/revoke', { username })).revoked,
  settings: () => control<{ accessTokenLifetimeSec: number; rotateRefreshTokens: boolean }>('GET', '/settings'),
  setSettings: (s: { accessTokenLifetimeSec?: number; rotateRefreshTokens?: boolean }) =>
    control<{ accessTokenLifetimeSec: number; rotateRefreshTokens: boolean }>('POST', '/settings', s),
  requests: async () => (await control<{ requests: IdpRequest[] }>('GET', '/requests')).requests,
};
