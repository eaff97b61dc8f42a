import { createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Secret } from '../secret.js';

/**
 * Local password hashes: `scrypt$ln=15,r=8,p=1$<salt b64>$<key b64>`, printed by
 * `oauth-mail-proxy hash-password`. Verifying one costs a deliberate ~100 ms of CPU, so a
 * verified password is remembered as a keyed digest (HMAC with a per-process random key):
 * later logins with the same password cost microseconds (SPEC section 4).
 */

const DEFAULT_LOG_N = 15;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function scryptOptions(logN: number, r: number, p: number): ScryptOptions {
  // maxmem must cover 128 * N * r bytes, which Node's 32 MiB default does not at N = 2^15.
  return { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r + 1024 * 1024 };
}

export async function hashPassword(password: Secret, logN = DEFAULT_LOG_N): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(password.reveal(), salt, KEY_LENGTH, scryptOptions(logN, 8, 1));
  return `scrypt$ln=${logN},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

export function parseScryptHash(hash: string): ParsedHash | undefined {
  const m = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!m) return undefined;
  const [, logN, r, p, salt, key] = m;
  const parsed = { logN: Number(logN), r: Number(r), p: Number(p), salt: Buffer.from(salt!, 'base64'), key: Buffer.from(key!, 'base64') };
  if (parsed.logN < 10 || parsed.logN > 22 || parsed.r < 1 || parsed.p < 1 || parsed.key.length < 16) return undefined;
  return parsed;
}

export async function verifyScryptHash(hash: string, password: Secret): Promise<boolean> {
  const parsed = parseScryptHash(hash);
  if (!parsed) return false;
  const key = await scrypt(password.reveal(), parsed.salt, parsed.key.length, scryptOptions(parsed.logN, parsed.r, parsed.p));
  return timingSafeEqual(key, parsed.key);
}

/** A cheap, constant-time equality check for two secrets via their keyed digests. */
export class DigestCache {
  readonly #key = randomBytes(32);
  readonly #verified = new Map<string, Buffer>();

  digest(value: Secret, context: string): Buffer {
    return createHmac('sha256', this.#key).update(context).update('\0').update(value.reveal()).digest();
  }

  /** True when `password` is the one last remembered for `id` (an account plus its hash). */
  matches(id: string, password: Secret): boolean {
    const known = this.#verified.get(id);
    return known !== undefined && timingSafeEqual(known, this.digest(password, id));
  }

  remember(id: string, password: Secret): void {
    this.#verified.set(id, this.digest(password, id));
  }

  forget(id: string): void {
    this.#verified.delete(id);
  }
}
