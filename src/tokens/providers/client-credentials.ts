import type { AccountSettings } from '../../config/resolve.js';
import { createOAuthClient, type OAuthClient, type OAuthClientOptions } from '../oauth-client.js';
import type { TokenProvider } from '../types.js';
import { explainForAccount } from './common.js';

/**
 * RFC 6749 section 4.4: app-only tokens with the client secret (Microsoft 365 with
 * `https://outlook.office365.com/.default`). No refresh token: a new grant each time.
 */

export interface ClientCredentialsProviderOptions {
  client?: OAuthClient | undefined;
  oauth?: OAuthClientOptions | undefined;
}

export function createClientCredentialsProvider(
  account: AccountSettings,
  options: ClientCredentialsProviderOptions = {},
): TokenProvider {
  const client = options.client ?? createOAuthClient(account.oauth, options.oauth);
  return {
    flow: 'client_credentials',
    obtain: async ({ signal }) => {
      try {
        return await client.clientCredentialsGrant(signal);
      } catch (err) {
        throw explainForAccount(err, account);
      }
    },
  };
}
