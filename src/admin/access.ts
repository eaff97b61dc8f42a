import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DigestCache, verifyScryptHash } from '../accounts/password.js';
import { hasAdminCredentials, type AdminSettings } from '../config/resolve.js';
import { Secret } from '../secret.js';

/**
 * Who may use the admin listener: anyone who can reach it when no credentials are configured
 * (it then listens on loopback only, which config/resolve.ts and server.ts enforce), else a
 * request with HTTP Basic (RFC 7617: `username` and `password` / `password_hash`) or a bearer
 * token (RFC 6750). Comparisons are constant-time; a verified scrypt password is remembered as
 * a keyed digest so that the status page's polling does not cost a key derivation each time.
 */

export interface AccessCheck {
  readonly required: boolean;
  allows(req: IncomingMessage): Promise<boolean>;
  /** The WWW-Authenticate header of a 401. */
  readonly challenge: string;
}

/** Equal-length digests under a per-process key, so that the comparison leaks no length either. */
function sameSecret(key: Buffer, a: string, b: string): boolean {
  const x = createHmac('sha256', key).update(a).digest();
  const y = createHmac('sha256', key).update(b).digest();
  return timingSafeEqual(x, y);
}

function parseBasic(header: string): { user: string; password: Secret } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: new Secret(decoded.slice(colon + 1)) };
}

export function createAccessCheck(settings: AdminSettings): AccessCheck {
  const key = randomBytes(32);
  const verified = new DigestCache();
  const basicConfigured = settings.password !== undefined || settings.passwordHash !== undefined;

  async function passwordOk(password: Secret): Promise<boolean> {
    if (settings.password) return sameSecret(key, password.reveal(), settings.password.reveal());
    const hash = settings.passwordHash;
    if (!hash) return false;
    if (verified.matches(hash, password)) return true;
    if (!(await verifyScryptHash(hash, password))) return false;
    verified.remember(hash, password);
    return true;
  }

  return {
    required: hasAdminCredentials(settings),
    challenge: basicConfigured ? 'Basic realm="oauth-mail-proxy admin", charset="UTF-8"' : 'Bearer realm="oauth-mail-proxy admin"',
    async allows(req) {
      if (!hasAdminCredentials(settings)) return true;
      const header = req.headers.authorization ?? '';
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      if (bearer !== undefined) return settings.bearerToken !== undefined && sameSecret(key, bearer, settings.bearerToken.reveal());
      const basic = basicConfigured ? parseBasic(header) : undefined;
      if (!basic) return false;
      const userOk = sameSecret(key, basic.user, settings.username);
      const passOk = await passwordOk(basic.password);
      return userOk && passOk;
    },
  };
}
