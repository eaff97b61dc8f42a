import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ProxyError } from '../errors.js';
import { KEY_BYTES } from './store-crypto.js';

/**
 * The token store's key (SPEC section 3): base64 of 32 bytes from the environment variable named
 * by `key_env`, or from the key file, which is created (mode 0600, folder 0700) on first run.
 * The key is not any client's password, so changing a local password never loses tokens.
 */

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = BASE64.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) {
    throw new ProxyError(
      'store_failed',
      `${where} must hold base64 of ${KEY_BYTES} random bytes (got ${BASE64.test(trimmed) ? `${key.length} bytes` : 'something that is not base64'}); ` +
        'generate one with: openssl rand -base64 32',
    );
  }
  return key;
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ENOENT';
}

async function createKeyFile(path: string): Promise<Buffer> {
  const key = randomBytes(KEY_BYTES);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // 'wx': never overwrite a key another process created meanwhile.
    await writeFile(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'EEXIST') return decodeKey(await readFile(path, 'utf8'), `key file ${path}`);
    throw err;
  }
}

async function keyFromFile(path: string, mayCreate: boolean): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    if (mayCreate) return createKeyFile(path);
    // A new key could never open the existing store: say so rather than fail later, less clearly.
    throw new ProxyError('store_failed', `the token store exists but its key file ${path} does not: restore the key file (or set key_env), or move the store away to start over`, { cause: err });
  }
  // A raw 32-byte key is accepted too (base64 text of 32 bytes is 44 characters).
  if (data.length === KEY_BYTES) return data;
  return decodeKey(data.toString('utf8'), `key file ${path}`);
}

/** `mayCreate`: false when a store file already exists (a new key could not read it). */
export async function loadStoreKey(keyFile: string, keyEnv: string | undefined, env: NodeJS.ProcessEnv, mayCreate: boolean): Promise<Buffer> {
  if (keyEnv !== undefined) {
    const value = env[keyEnv];
    if (value === undefined || value.trim() === '') {
      throw new ProxyError('store_failed', `token_store.key_env names ${keyEnv}, but that environment variable is not set`);
    }
    return decodeKey(value, `environment variable ${keyEnv}`);
  }
  try {
    return await keyFromFile(keyFile, mayCreate);
  } catch (err) {
    if (err instanceof ProxyError) throw err;
    throw new ProxyError('store_failed', `cannot read or create the token store key file ${keyFile}`, { cause: err });
  }
}
