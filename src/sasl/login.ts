import { Secret } from '../secret.js';
import { decodeBase64Strict, decodeUtf8Strict } from './base64.js';
import { ProxyError } from '../errors.js';

/**
 * The LOGIN SASL mechanism (draft-murchison-sasl-login): the server prompts for the user name
 * and then the password, each prompt and answer base64-encoded.
 */

/** base64("Username:") */
export const LOGIN_USERNAME_PROMPT = 'VXNlcm5hbWU6';
/** base64("Password:") */
export const LOGIN_PASSWORD_PROMPT = 'UGFzc3dvcmQ6';

/** Decodes the answer to the user name prompt. Throws ProxyError `bad_input`. */
export function decodeLoginUsername(base64: string): string {
  const user = decodeUtf8Strict(decodeBase64Strict(base64), 'LOGIN user name');
  if (user.length === 0 || user.includes('\0')) throw new ProxyError('bad_input', 'Malformed LOGIN user name');
  return user;
}

/** Decodes the answer to the password prompt; it becomes a Secret at once. Throws `bad_input`. */
export function decodeLoginPassword(base64: string): Secret {
  const password = decodeUtf8Strict(decodeBase64Strict(base64), 'LOGIN password');
  if (password.length === 0 || password.includes('\0')) throw new ProxyError('bad_input', 'Malformed LOGIN password');
  return new Secret(password);
}
