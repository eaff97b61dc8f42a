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

export interface ParsedHash {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/**
 * What a hash may ask of a login. node:crypto refuses N >= 2^(16 r) (RFC 7914 section 2), and
 * the memory it takes, 128 * N * r bytes, is allocated at every verification: a config must not
 * be able to make each login allocate gigabytes or run for minutes.
 */
const LOG_N_RANGE = [10, 20] as const;
const R_RANGE = [1, 32] as const;
const P_RANGE = [1, 16] as const;
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const SALT_BYTES = [8, 64] as const;
const KEY_BYTES = [16, 64] as const;
const HASH_SHAPE = /^scrypt\$ln=(\d{1,3}),r=(\d{1,3}),p=(\d{1,3})\$([^$]*)\$([^$]*)$/;

/** A hash's parts, or why it cannot be verified; only what hashPassword could print is accepted. */
export function checkScryptHash(hash: string): ParsedHash | { problem: string } {
  const m = HASH_SHAPE.exec(hash);
  if (!m) return { problem: 'expected a hash printed by `oauth-mail-proxy hash-password` (scrypt$ln=15,r=8,p=1$<salt>$<key>)' };
  const [, logN, r, p, salt = '', key = ''] = m.map(String);
  const parsed = { logN: Number(logN), r: Number(r), p: Number(p), salt: decodeBase64(salt), key: decodeBase64(key) };
  const problem = parameterProblem(parsed.logN, parsed.r, parsed.p)
    ?? lengthProblem('salt', parsed.salt, SALT_BYTES) ?? lengthProblem('key', parsed.key, KEY_BYTES);
  return problem ? { problem } : (parsed as ParsedHash);
}

function parameterProblem(logN: number, r: number, p: number): string | undefined {
  const outside = (n: number, [min, max]: readonly [number, number]): boolean => n < min || n > max;
  if (outside(logN, LOG_N_RANGE)) return `ln=${logN} is out of range (${LOG_N_RANGE.join('-')})`;
  if (outside(r, R_RANGE)) return `r=${r} is out of range (${R_RANGE.join('-')})`;
  if (outside(p, P_RANGE)) return `p=${p} is out of range (${P_RANGE.join('-')})`;
  if (logN >= 16 * r) return `ln=${logN} needs r of at least ${Math.floor(logN / 16) + 1} (N must be below 2^(16 r))`;
  if (128 * 2 ** logN * r > MAX_SCRYPT_MEMORY) return `ln=${logN},r=${r} needs more than ${MAX_SCRYPT_MEMORY / 2 ** 20} MiB per login`;
  return undefined;
}

function lengthProblem(what: string, bytes: Buffer | undefined, [min, max]: readonly [number, number]): string | undefined {
  if (!bytes) return `${what} is not base64`;
  return bytes.length < min || bytes.length > max ? `${what} is ${bytes.length} bytes (expected ${min}-${max})` : undefined;
}

/** Strict base64 (what Buffer#toString('base64') prints); Buffer.from alone skips bad characters. */
function decodeBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return text !== '' && bytes.toString('base64') === text ? bytes : undefined;
}

/** Why a hash cannot be verified (for the config schema), or undefined when it can be. */
export function scryptHashProblem(hash: string): string | undefined {
  const checked = checkScryptHash(hash);
  return 'problem' in checked ? checked.problem : undefined;
}

export function parseScryptHash(hash: string): ParsedHash | undefined {
  const checked = checkScryptHash(hash);
  return 'problem' in checked ? undefined : checked;
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
