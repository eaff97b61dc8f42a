import { isIP } from 'node:net';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * Provider endpoints (token, authorize, device authorization) must be https, except on a
 * loopback address (the demo and test identity provider): client secrets, codes and tokens
 * travel there (SPEC section 5).
 */
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

export const ENDPOINT_URL_RULE = 'must be https (plain http only on a loopback address)';
