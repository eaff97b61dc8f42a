import type { AccountSettings } from '../../config/resolve.js';
import { ProxyError } from '../../errors.js';
import type { TokenProvider } from '../types.js';

/**
 * A fixed access token from the config. It cannot be refreshed: once its configured expiry has
 * passed, or the upstream server refuses it, the operator must configure a new one.
 */

const WHAT_TO_DO = 'configure a new access_token (or access_token_file) and reload';

export interface StaticProviderOptions {
  now?: (() => number) | undefined;
}

export function createStaticProvider(account: AccountSettings, options: StaticProviderOptions = {}): TokenProvider {
  const now = options.now ?? Date.now;
  return {
    flow: 'static',
    obtain: async () => {
      const token = account.staticToken;
      if (!token) throw new ProxyError('config_invalid', `account ${account.username} has flow "static" but no access_token`);
      if (token.expiresAt !== undefined && now() >= token.expiresAt) {
        const when = new Date(token.expiresAt).toISOString();
        throw new ProxyError('token_expired', `the static access token of ${account.username} expired at ${when}: ${WHAT_TO_DO}`);
      }
      return { accessToken: token.value, expiresAt: token.expiresAt };
    },
  };
}

/** The upstream server refused a static token: there is nothing to refresh, so it counts as expired. */
export function staticTokenRejected(account: AccountSettings, cause: unknown): ProxyError {
  return new ProxyError(
    'token_expired',
    `the mail server refused the static access token of ${account.username} (expired or revoked): ${WHAT_TO_DO}`,
    { cause },
  );
}
