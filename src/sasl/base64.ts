import { ProxyError } from '../errors.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes base64 strictly (RFC 4648 section 4, as SASL requires): only the base64 alphabet,
 * correct padding, no whitespace, and no stray bits in the last character. `Buffer.from(s,
 * 'base64')` silently skips anything it does not understand, which would let garbage through.
 * Throws ProxyError `bad_input`.
 */
export function decodeBase64Strict(text: string): Buffer {
  if (!BASE64.test(text)) throw new ProxyError('bad_input', 'Invalid base64 data');
  const bytes = Buffer.from(text, 'base64');
  // Canonical form only: "QQ==" is "A", "QR==" carries stray bits and is refused.
  if (bytes.toString('base64') !== text) throw new ProxyError('bad_input', 'Invalid base64 data');
  return bytes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly (SASL strings are UTF-8, RFC 4422 section 3.4.1). Throws `bad_input`. */
export function decodeUtf8Strict(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new ProxyError('bad_input', `${what} is not valid UTF-8`, { cause: err });
  }
}
