import { ProxyError } from '../errors.js';
import type { Secret } from '../secret.js';
import { decodeBase64Strict } from './base64.js';

/**
 * SASL XOAUTH2 (Google's and Microsoft's documented format):
 * base64("user=" user ^A "auth=Bearer " token ^A ^A).
 * https://developers.google.com/gmail/imap/xoauth2-protocol
 */
export function encodeXOAuth2(user: string, token: Secret): string {
  checkUser(user);
  const value = checkToken(token);
  return Buffer.from(`user=${user}\x01auth=Bearer ${value}\x01\x01`, 'utf8').toString('base64');
}

/**
 * What a server says when it refuses a token: XOAUTH2 and OAUTHBEARER (RFC 7628 section 3.2.2)
 * both send a base64 JSON challenge such as {"status":"401","schemes":"bearer","scope":"..."}.
 * Only these secret-free fields are kept.
 */
export interface OAuthErrorChallenge {
  status?: string | undefined;
  scope?: string | undefined;
  schemes?: string | undefined;
}

/** Decodes an error challenge; undefined when it is not base64 JSON (some servers send text). */
export function parseOAuthErrorChallenge(challenge: string): OAuthErrorChallenge | undefined {
  try {
    const json: unknown = JSON.parse(decodeBase64Strict(challenge.trim()).toString('utf8'));
    if (typeof json !== 'object' || json === null) return undefined;
    const pick = (key: string): string | undefined => {
      const v = (json as Record<string, unknown>)[key];
      return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
    };
    return { status: pick('status'), scope: pick('scope'), schemes: pick('schemes') };
  } catch {
    return undefined;
  }
}

/** The secret-free fields of an error challenge as text, for error messages and the log. */
export function describeOAuthErrorChallenge(challenge: string): string {
  const parsed = parseOAuthErrorChallenge(challenge);
  const parts = Object.entries(parsed ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'challenge without details';
}

/** A user name goes between ^A separators; a control character there would change the message. */
export function checkUser(user: string): void {
  if (user.length === 0 || /[\x00-\x1f\x7f]/.test(user)) {
    throw new ProxyError('config_invalid', 'The upstream user name is empty or contains control characters');
  }
}

/**
 * A token with a space, ^A or line break would corrupt the SASL message. RFC 6750's b64token is
 * stricter still, but some providers' opaque tokens stray from it; visible ASCII is required.
 */
export function checkToken(token: Secret): string {
  const value = token.reveal();
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new ProxyError('token_rejected', 'The access token is empty or contains spaces or control characters');
  }
  return value;
}
