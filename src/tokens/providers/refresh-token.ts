import type { AccountSettings } from '../../config/resolve.js';
import { createOAuthClient, type OAuthClient, type OAuthClientOptions } from '../oauth-client.js';
import type { TokenProvider } from '../types.js';
import { explainForAccount, noRefreshToken } from './common.js';

/**
 * RFC 6749 section 6: the current refresh token (from the store, or the configured seed) for a
 * new access token. Also used by the device_code and authorization_code flows once they hold a
 * refresh token; their interactive first step lives elsewhere.
 */

export interface RefreshTokenProviderOptions {
  client?: OAuthClient | undefined;
  oauth?: OAuthClientOptions | undefined;
}

export function createRefreshTokenProvider(account: AccountSettings, options: RefreshTokenProviderOptions = {}): TokenProvider {
  const client = options.client ?? createOAuthClient(account.oauth, options.oauth);
  return {
    flow: account.flow,
    obtain: async ({ refreshToken, signal }) => {
      if (!refreshToken) throw noRefreshToken(account);
      try {
        return await client.refreshTokenGrant(refreshToken, signal);
      } catch (err) {
        throw explainForAccount(err, account);
      }
    },
  };
}
