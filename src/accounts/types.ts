import type { AccountSettings } from '../config/resolve.js';
import type { Protocol } from '../config/schema.js';
import type { Secret } from '../secret.js';

/** Who is on the other end of a client connection. */
export interface ClientInfo {
  /** Remote IP address as Node reports it (IPv4-mapped IPv6 already unwrapped). */
  address: string;
  port: number;
  protocol: Protocol;
}

/**
 * Checks a local login (SPEC section 4). Throws ProxyError `auth_failed` for an unknown user or
 * a wrong password, after the throttle's delay for that address. For `password` (ROPC)
 * accounts it only finds the account: the token manager checks the password with the IdP.
 */
export interface Authenticator {
  authenticate(username: string, password: Secret, client: ClientInfo): Promise<AccountSettings>;
}
