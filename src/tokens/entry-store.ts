import { toProxyError } from '../errors.js';
import type { TokenStore } from '../store/token-store.js';
import { applyStored, toStored, type AccountEntry } from './account-entry.js';

/**
 * Moves account entries between the token manager's memory and the token store: loaded once,
 * written whenever they change, and never handed out while a change is still only in memory.
 */
export interface EntryStore {
  /** Loaded from the store once, and nothing left unwritten (a rotated token never waits in memory). */
  ready(entry: AccountEntry): Promise<void>;
  /** Notes a change worth storing. */
  markChanged(entry: AccountEntry): void;
  /** Writes the entry now. Throws ProxyError `store_failed`. */
  persist(entry: AccountEntry): Promise<void>;
  /** Resolves when every write started so far has finished. */
  settled(): Promise<void>;
}

export function createEntryStore(store: TokenStore, now: () => number): EntryStore {
  const writes = new Set<Promise<void>>();

  async function persist(entry: AccountEntry): Promise<void> {
    if (entry.account.flow === 'static') return; // the config is its only store
    const generation = entry.generation;
    const write = store.put(entry.account.username, toStored(entry, now()));
    writes.add(write);
    try {
      await write;
      if (entry.generation === generation) entry.dirty = false; // nothing changed meanwhile
    } catch (err) {
      throw toProxyError(err, 'store_failed', `cannot store the tokens of ${entry.account.username}`);
    } finally {
      writes.delete(write);
    }
  }

  async function load(entry: AccountEntry): Promise<void> {
    if (entry.account.flow === 'static') return;
    let stored;
    try {
      stored = await store.get(entry.account.username);
    } catch (err) {
      throw toProxyError(err, 'store_failed', `cannot read the tokens of ${entry.account.username}`);
    }
    if (applyStored(entry, stored, now())) entry.dirty = true;
  }

  async function ready(entry: AccountEntry): Promise<void> {
    entry.loading ??= load(entry).catch((err: unknown) => {
      entry.loading = undefined; // the next caller tries again
      throw err;
    });
    await entry.loading;
    if (!entry.dirty) return;
    entry.flushing ??= persist(entry).finally(() => {
      entry.flushing = undefined;
    });
    await entry.flushing;
  }

  return {
    ready,
    persist,
    markChanged(entry) {
      entry.generation++;
      entry.dirty = true;
    },
    settled: async () => {
      await Promise.allSettled([...writes]);
    },
  };
}
