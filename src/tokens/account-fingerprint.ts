import { createHash } from 'node:crypto';
import type { AccountSettings } from '../config/resolve.js';
import { Secret } from '../secret.js';

/**
 * A digest of everything configured for an account, secrets included (hashed, never kept), so
 * that a reload can tell an unchanged account, whose cached tokens and timers stay as they are,
 * from a changed one (new provider, client secret, refresh-token seed, servers...), which starts
 * afresh from the token store.
 */
export function accountFingerprint(account: AccountSettings): string {
  return fingerprint(account);
}

/** The same for any settings object: equal digests, equal settings. */
export function fingerprint(value: unknown): string {
  const json = JSON.stringify(value, (_key, v: unknown) => (v instanceof Secret ? `secret:${v.reveal()}` : v)) ?? 'undefined';
  return createHash('sha256').update(json, 'utf8').digest('hex');
}
