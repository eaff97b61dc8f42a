import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isProxyError } from '../../../src/errors.js';
import { openFileStore, type FileStoreOptions } from '../../../src/store/file-store.js';
import type { StoredTokens } from '../../../src/store/token-store.js';
import { tempDir } from '../../fakes/token-fixtures.js';

async function paths(): Promise<FileStoreOptions & { dir: string }> {
  const dir = await tempDir('omp-store-');
  return { dir, path: join(dir, 'data', 'tokens.enc'), keyFile: join(dir, 'keys', 'tokens.key') };
}

function tokens(refreshToken: string): StoredTokens {
  return { refreshToken, accessToken: `at-${refreshToken}`, accessTokenExpiresAt: 1_700_000_000_000, seedDigest: 'abc', updatedAt: 1 };
}

async function openError(options: FileStoreOptions, env: NodeJS.ProcessEnv = {}): Promise<Error> {
  const err = await openFileStore(options, env).then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, 'store_failed'), `expected store_failed, got ${String(err)}`).toBe(true);
  return err as Error;
}

describe('encrypted file store', () => {
  it('starts empty without a file, round-trips every field, and survives a reopen', async () => {
    const p = await paths();
    const store = await openFileStore(p, {});
    expect(await store.get('alice@example.com')).toBeUndefined();
    const value: StoredTokens = { ...tokens('rt_1'), needsAuthorization: { since: 5, reason: 'invalid_grant' } };
    await store.put('alice@example.com', value);
    await store.put('bob@example.com', tokens('rt_2'));
    await store.close();
    const reopened = await openFileStore(p, {});
    expect(await reopened.get('alice@example.com')).toEqual(value);
    expect((await reopened.get('bob@example.com'))?.refreshToken).toBe('rt_2');
    await reopened.delete('bob@example.com');
    await reopened.close();
    expect(await (await openFileStore(p, {})).get('bob@example.com')).toBeUndefined();
  });

  it('encrypts: no token appears in the file', async () => {
    const p = await paths();
    const store = await openFileStore(p, {});
    await store.put('alice@example.com', tokens('rt_plainly_visible'));
    const raw = await readFile(p.path);
    expect(raw.subarray(0, 7).toString()).toBe('OMPTOKS');
    expect(raw.toString('latin1')).not.toContain('rt_plainly_visible');
    expect(raw.toString('latin1')).not.toContain('alice@example.com');
  });

  it('creates the key file 0600 in a 0700 folder and the store file 0600', async () => {
    const p = await paths();
    const store = await openFileStore(p, {});
    await store.put('a', tokens('rt'));
    expect((await stat(p.keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(p.dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(p.path)).mode & 0o777).toBe(0o600);
    expect((await readFile(p.keyFile, 'utf8')).trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('takes the key from the environment variable, which wins over the key file', async () => {
    const p = await paths();
    const env = { OMP_KEY: randomBytes(32).toString('base64') };
    const store = await openFileStore({ ...p, keyEnv: 'OMP_KEY' }, env);
    await store.put('a', tokens('rt_env'));
    await store.close();
    await expect(stat(p.keyFile)).rejects.toThrow(); // no key file was created
    expect((await (await openFileStore({ ...p, keyEnv: 'OMP_KEY' }, env)).get('a'))?.refreshToken).toBe('rt_env');
    expect((await openError({ ...p, keyEnv: 'OMP_KEY' }, {})).message).toMatch(/OMP_KEY.*not set/);
  });

  it('refuses a key of the wrong length with a clear message', async () => {
    const p = await paths();
    const err = await openError({ ...p, keyEnv: 'K' }, { K: randomBytes(16).toString('base64') });
    expect(err.message).toMatch(/base64 of 32 random bytes \(got 16 bytes\)/);
    await writeFile(p.keyFile.replace('keys/', ''), 'not base64 !!');
    const fileErr = await openError({ ...p, keyFile: p.keyFile.replace('keys/', '') });
    expect(fileErr.message).toMatch(/not base64/);
  });

  it('does not create a new key for an existing store whose key file is missing', async () => {
    const p = await paths();
    await (await openFileStore(p, {})).put('a', tokens('rt'));
    await rm(p.keyFile);
    expect((await openError(p)).message).toMatch(/exists but its key file .* does not/);
    await expect(stat(p.keyFile)).rejects.toThrow();
  });

  it('refuses the wrong key', async () => {
    const p = await paths();
    await (await openFileStore(p, {})).put('a', tokens('rt'));
    await writeFile(p.keyFile, `${randomBytes(32).toString('base64')}\n`);
    expect((await openError(p)).message).toMatch(/cannot be decrypted: the key is not the one/);
  });

  it('detects a tampered byte, a truncated file and a foreign file', async () => {
    const p = await paths();
    await (await openFileStore(p, {})).put('a', tokens('rt'));
    const good = await readFile(p.path);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3]! ^= 0x01;
    await writeFile(p.path, flipped);
    expect((await openError(p)).message).toMatch(/modified or truncated/);
    await writeFile(p.path, good);
    await truncate(p.path, good.length - 10);
    expect((await openError(p)).message).toMatch(/modified or truncated/);
    await truncate(p.path, 20);
    expect((await openError(p)).message).toMatch(/is truncated/);
    await writeFile(p.path, '{"accounts":{}}');
    expect((await openError(p)).message).toMatch(/bad header/);
    const header = Buffer.from(good);
    header[7] = 9;
    await writeFile(p.path, header);
    expect((await openError(p)).message).toMatch(/format version 9/);
  });

  it('serialises concurrent puts: every one lands, no temp file is left', async () => {
    const p = await paths();
    const store = await openFileStore(p, {});
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(`user${i}@example.com`, tokens(`rt_${i}`))));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put('same@example.com', tokens(`rt_same_${i}`))));
    await store.close();
    expect(await readdir(join(p.dir, 'data'))).toEqual(['tokens.enc']);
    const reopened = await openFileStore(p, {});
    for (let i = 0; i < 50; i++) expect((await reopened.get(`user${i}@example.com`))?.refreshToken).toBe(`rt_${i}`);
    expect((await reopened.get('same@example.com'))?.refreshToken).toBe('rt_same_19');
  });

  it('fails a put with store_failed when the file cannot be replaced, keeping the old one and no temp file', async () => {
    const p = await paths();
    const target = join(p.dir, 'data');
    const store = await openFileStore({ ...p, path: target }, {});
    await mkdir(target); // rename() cannot replace a folder
    const err = await store.put('a', tokens('rt')).then(() => undefined, (e: unknown) => e);
    expect(isProxyError(err, 'store_failed')).toBe(true);
    expect((err as Error).message).toContain(target);
    expect((await readdir(p.dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect((await stat(target)).isDirectory()).toBe(true);
  });

  it('returns copies, so a caller cannot change the store by mutating', async () => {
    const p = await paths();
    const store = await openFileStore(p, {});
    const value = tokens('rt');
    await store.put('a', value);
    value.refreshToken = 'changed';
    const got = await store.get('a');
    got!.accessToken = 'changed too';
    expect(await store.get('a')).toEqual(tokens('rt'));
  });
});
