import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isProxyError, ProxyError } from '../errors.js';
import { decryptDocument, encryptDocument } from './store-crypto.js';
import { loadStoreKey } from './store-key.js';
import type { StoredTokens, TokenStore } from './token-store.js';

/**
 * The default token store (SPEC section 3): every account in one JSON document, encrypted with
 * AES-256-GCM (store-crypto.ts). Each write replaces the whole file atomically: temp file in the
 * same folder, fsync, rename, fsync of the folder, so a crash leaves the old or the new state,
 * never a torn file. Writes go through one queue, so concurrent puts never interleave.
 */

export interface FileStoreOptions {
  path: string;
  keyFile: string;
  /** Name of an environment variable holding the key (base64 of 32 bytes); wins over keyFile. */
  keyEnv?: string | undefined;
}

interface StoreDocument {
  version: 1;
  accounts: Record<string, StoredTokens>;
}

function parseDocument(plaintext: Buffer, path: string): Map<string, StoredTokens> {
  let doc: unknown;
  try {
    doc = JSON.parse(plaintext.toString('utf8'));
  } catch (err) {
    throw new ProxyError('store_failed', `${path} decrypted but its content is not valid JSON`, { cause: err });
  }
  const accounts = (doc as Partial<StoreDocument> | null)?.accounts;
  if (typeof accounts !== 'object' || accounts === null) {
    throw new ProxyError('store_failed', `${path} decrypted but holds no accounts table`);
  }
  return new Map(Object.entries(accounts));
}

/** The store file's bytes, or undefined at first run. */
async function readStoreFile(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new ProxyError('store_failed', `cannot read token store ${path}`, { cause: err });
  }
}

async function fsyncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Temp file, fsync, rename over the target, fsync the folder (so the rename itself is durable). */
async function writeAtomically(path: string, data: Buffer): Promise<void> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncFolder(folder);
}

/** A process id that no longer runs (its temp files are litter). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as { code?: unknown }).code === 'ESRCH';
  }
}

/**
 * Temp files of writers that were killed between writing and renaming (the previous state is
 * intact beside them). They hold encrypted tokens, so they are removed rather than left to pile
 * up with every crash; a live process's temp file is its write in progress and is left alone.
 */
async function removeStaleTempFiles(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return; // no folder yet: first run
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) && name.endsWith('.tmp') ? Number(name.slice(prefix.length).split('.')[0]) : NaN;
    if (Number.isInteger(pid) && pid !== process.pid && isGone(pid)) await unlink(join(dirname(path), name)).catch(() => undefined);
  }
}

export async function openFileStore(options: FileStoreOptions, env: NodeJS.ProcessEnv): Promise<TokenStore> {
  await removeStaleTempFiles(options.path);
  const data = await readStoreFile(options.path);
  const key = await loadStoreKey(options.keyFile, options.keyEnv, env, data === undefined);
  const entries = data === undefined ? new Map<string, StoredTokens>() : parseDocument(decryptDocument(data, key, `token store ${options.path}`), options.path);
  let queue: Promise<void> = Promise.resolve();
  let closed = false;

  function snapshot(): Buffer {
    const doc: StoreDocument = { version: 1, accounts: Object.fromEntries(entries) };
    return encryptDocument(Buffer.from(JSON.stringify(doc), 'utf8'), key);
  }

  /** Queues a write of the state as it is when the write starts (later changes ride along). */
  function persist(): Promise<void> {
    const write = queue.then(async () => {
      try {
        await writeAtomically(options.path, snapshot());
      } catch (err) {
        throw isProxyError(err) ? err : new ProxyError('store_failed', `cannot write token store ${options.path}`, { cause: err });
      }
    });
    queue = write.catch(() => undefined);
    return write;
  }

  function ensureOpen(): void {
    if (closed) throw new ProxyError('store_failed', `token store ${options.path} is closed`);
  }

  return {
    get: async (username) => {
      const entry = entries.get(username);
      return entry === undefined ? undefined : structuredClone(entry);
    },
    put: async (username, tokens) => {
      ensureOpen();
      entries.set(username, structuredClone(tokens));
      await persist();
    },
    delete: async (username) => {
      ensureOpen();
      if (!entries.delete(username)) return;
      await persist();
    },
    close: async () => {
      closed = true;
      await queue;
    },
  };
}
