import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ProxyError } from '../errors.js';

/**
 * The token store's file format, AES-256-GCM (NIST SP 800-38D):
 *
 *   "OMPTOKS" (7 bytes) | version 0x01 | IV (12 bytes, fresh per write) | tag (16) | ciphertext
 *
 * The magic and version are authenticated as associated data, so any change to any byte, or a
 * truncation, fails the tag check instead of decrypting to garbage.
 */

export const KEY_BYTES = 32;
const MAGIC = Buffer.from('OMPTOKS', 'ascii');
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + 1;
const MIN_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES;

function header(): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([VERSION])]);
}

export function encryptDocument(plaintext: Buffer, key: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const head = header();
  cipher.setAAD(head);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([head, iv, cipher.getAuthTag(), ciphertext]);
}

/** `where` names the file in messages. Throws ProxyError `store_failed` with the reason. */
export function decryptDocument(data: Buffer, key: Buffer, where: string): Buffer {
  if (data.length < HEADER_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ProxyError('store_failed', `${where} is not an oauth-mail-proxy token store (bad header)`);
  }
  const version = data[MAGIC.length];
  if (version !== VERSION) {
    throw new ProxyError('store_failed', `${where} has format version ${String(version)}; this proxy reads version ${VERSION}`);
  }
  if (data.length < MIN_BYTES) throw new ProxyError('store_failed', `${where} is truncated (${data.length} bytes)`);
  const iv = data.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const tag = data.subarray(HEADER_BYTES + IV_BYTES, MIN_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(data.subarray(0, HEADER_BYTES));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(data.subarray(MIN_BYTES)), decipher.final()]);
  } catch (err) {
    throw new ProxyError(
      'store_failed',
      `${where} cannot be decrypted: the key is not the one it was written with, or the file was modified or truncated`,
      { cause: err },
    );
  }
}
