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
  /**
   * A login judged outside `authenticate`, counted as a local check's would be: a refusal is a
   * failed login for the throttle (its delay is waited out before this returns), an acceptance
   * clears the address's failures. Used for the identity provider's verdict on a flow "password"
   * (ROPC) login, where `authenticate` only found the account (without it, guesses at the real
   * password would never be slowed), and for refusals made before any password check (a SASL
   * authorization identity the user may not act as).
   */
  settleLogin(client: ClientInfo, accepted: boolean): Promise<void>;
}

/**
 * What the registry tells the metrics about refused logins (admin/auth-metrics.ts counts them).
 * Never a user name or a password: an address and a protocol only.
 */
export interface AuthEvents {
  /** A local login was refused; `delayMs` is how long the throttle held the answer back. */
  loginFailed?(event: { protocol: Protocol; address: string; delayMs: number; lockedOut: boolean }): void;
  /** An address (IPv6: its /64) has just been locked out until `until` (epoch ms). */
  lockedOut?(event: { protocol: Protocol; address: string; until: number }): void;
}
