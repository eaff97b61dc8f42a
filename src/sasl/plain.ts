import { ProxyError } from '../errors.js';
import { Secret } from '../secret.js';
import { decodeBase64Strict, decodeUtf8Strict } from './base64.js';

/** A decoded SASL PLAIN message (RFC 4616 section 2). */
export interface PlainCredentials {
  /** Authorization identity; empty when the client acts as itself. */
  authzid: string;
  /** Authentication identity: the user name. */
  authcid: string;
  password: Secret;
}

/**
 * Decodes PLAIN: base64 of [authzid] NUL authcid NUL passwd. Throws ProxyError `bad_input` for
 * anything that is not exactly that (invalid base64, wrong number of NULs, empty user or
 * password, invalid UTF-8). The password becomes a Secret the moment it is decoded.
 */
export function decodePlain(base64: string): PlainCredentials {
  const bytes = decodeBase64Strict(base64);
  const first = bytes.indexOf(0);
  const second = first === -1 ? -1 : bytes.indexOf(0, first + 1);
  if (first === -1 || second === -1 || bytes.indexOf(0, second + 1) !== -1) {
    throw new ProxyError('bad_input', 'Malformed PLAIN message: expected authzid NUL authcid NUL password');
  }
  const authzid = decodeUtf8Strict(bytes.subarray(0, first), 'PLAIN authorization identity');
  const authcid = decodeUtf8Strict(bytes.subarray(first + 1, second), 'PLAIN user name');
  const password = decodeUtf8Strict(bytes.subarray(second + 1), 'PLAIN password');
  if (authcid.length === 0 || password.length === 0) {
    throw new ProxyError('bad_input', 'Malformed PLAIN message: empty user name or password');
  }
  return { authzid, authcid, password: new Secret(password) };
}

/**
 * RFC 4616 section 2: the server must refuse unless the authenticated user may act as the
 * authorization identity. A local password grants no one the right to act as another user, so
 * only an empty authzid or the user's own name (case-insensitively, as user names match) passes.
 */
export function actsAsItself(authzid: string | undefined, username: string): boolean {
  return !authzid || authzid.toLowerCase() === username.toLowerCase();
}

/** Encodes PLAIN, for tests and for clients of our own listeners. */
export function encodePlain(authcid: string, password: Secret, authzid = ''): string {
  return Buffer.from(`${authzid}\0${authcid}\0${password.reveal()}`, 'utf8').toString('base64');
}
