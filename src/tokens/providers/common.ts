import type { AccountSettings } from '../../config/resolve.js';
import { isProxyError, ProxyError } from '../../errors.js';
import { oauthErrorCode } from '../oauth-errors.js';

/** Errors after which the account's grant itself is gone, so a person must authorize it again. */
const GRANT_GONE = new Set(['invalid_grant', 'consent_required', 'interaction_required', 'access_denied']);

/** What the operator does to give an account a new grant, per flow. */
export function reauthorizeAction(account: AccountSettings): string {
  switch (account.flow) {
    case 'refresh_token':
      return `put a new refresh_token (or refresh_token_file) for ${account.username} in the config and reload`;
    case 'device_code':
    case 'authorization_code':
      return `run \`oauth-mail-proxy auth ${account.username}\` (or use Sign in on the status page)`;
    case 'password':
      return `log in through the proxy with the current password of ${account.username}`;
    default:
      return 'fix the account in the config and reload';
  }
}

/**
 * Names the account in a `needs_authorization` error and, when the grant is gone, says how to
 * get a new one. Other errors pass through unchanged.
 */
export function explainForAccount(err: unknown, account: AccountSettings): unknown {
  if (!isProxyError(err, 'needs_authorization')) return err;
  const code = oauthErrorCode(err);
  const action = code !== undefined && GRANT_GONE.has(code) ? `: ${reauthorizeAction(account)}` : '';
  return new ProxyError('needs_authorization', `account ${account.username}: ${err.message}${action}`, { cause: err });
}

/** `needs_authorization` for an account that has no refresh token at all yet. */
export function noRefreshToken(account: AccountSettings): ProxyError {
  return new ProxyError('needs_authorization', `account ${account.username} has no refresh token yet: ${reauthorizeAction(account)}`);
}
