import type { Secret } from '../secret.js';
import { checkToken, checkUser } from './xoauth2.js';

/** Where the client connects; RFC 7628 section 3.1 puts host and port in the message. */
export interface OAuthBearerTarget {
  host: string;
  port: number;
}

/**
 * SASL OAUTHBEARER initial response (RFC 7628 section 3.1), base64 of
 * gs2-header ^A "host=" host ^A "port=" port ^A "auth=Bearer " token ^A ^A,
 * where the gs2 header is "n,a=" saslname "," (no channel binding, RFC 5801 section 4).
 */
export function encodeOAuthBearer(user: string, token: Secret, target: OAuthBearerTarget): string {
  checkUser(user);
  const value = checkToken(token);
  const message = `n,a=${encodeSaslName(user)},\x01host=${target.host}\x01port=${target.port}\x01auth=Bearer ${value}\x01\x01`;
  return Buffer.from(message, 'utf8').toString('base64');
}

/**
 * After an error challenge the client must answer with a single ^A (RFC 7628 section 3.2.3)
 * so that the server can finish with its tagged failure. This is its base64.
 */
export const OAUTHBEARER_ERROR_ACK = 'AQ==';

/** RFC 5801 section 4: in a gs2 saslname, "=" becomes "=3D" and "," becomes "=2C". */
export function encodeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}
