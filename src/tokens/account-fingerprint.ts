import { createHash } from 'node:crypto';
import type { AccountSettings } from '../config/resolve.js';
import { Secret } from '../secret.js';

/**
 * A digest of everything configured for an account's tokens, secrets included (hashed, never
 * kept), so that a reload can tell an unchanged account, whose cached tokens and timers stay as
 * they are, from a changed one (new provider, client secret, refresh-token seed, static token,
 * servers...), which starts afresh from the token store. The local password is left out: it is
 * the registry's business, and changing it must not cost the account its cached token.
 */
export function accountFingerprint(account: AccountSettings): string {
  const { localPassword: _local, ...tokenSettings } = account;
  return fingerprint(tokenSettings);
}

/** The same for any settings object: equal digests, equal settings. */
export function fingerprint(value: unknown): string {
  const json = JSON.stringify(value, revealSecrets) ?? 'undefined';
  return createHash('sha256').update(json, 'utf8').digest('hex');
}

/**
 * JSON.stringify calls a value's toJSON before the replacer sees it, and a Secret's toJSON says
 * "[redacted]": every secret would hash alike. `this[key]` is the value before that call.
 */
function revealSecrets(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Secret ? `secret:${raw.reveal()}` : value;
}
