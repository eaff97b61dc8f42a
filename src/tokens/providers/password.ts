import type { AccountSettings } from '../../config/resolve.js';
import { isProxyError, ProxyError } from '../../errors.js';
import { createOAuthClient, oauthErrorCode, oauthErrorText, type OAuthClient, type OAuthClientOptions } from '../oauth-client.js';
import type { ObtainContext, TokenGrant, TokenProvider } from '../types.js';
import { explainForAccount } from './common.js';

/**
 * Resource Owner Password Credentials (RFC 6749 section 4.3; Microsoft's ROPC): the password the
 * client typed is the real one. With a refresh token (and a password the manager already knows
 * to be the accepted one) the refresh token is tried first; when the grant is gone, the password
 * gets a new one. A refusal of the password itself is `auth_failed`, never `needs_authorization`.
 */

export interface PasswordProviderOptions {
  client?: OAuthClient | undefined;
  oauth?: OAuthClientOptions | undefined;
}

export function createPasswordProvider(account: AccountSettings, options: PasswordProviderOptions = {}): TokenProvider {
  const client = options.client ?? createOAuthClient(account.oauth, options.oauth);

  async function withRefreshToken(ctx: ObtainContext): Promise<TokenGrant | undefined> {
    if (!ctx.refreshToken) return undefined;
    try {
      return await client.refreshTokenGrant(ctx.refreshToken, ctx.signal);
    } catch (err) {
      // A dead refresh token is no failure while we hold the password: it buys a new grant.
      if (ctx.password && isProxyError(err, 'needs_authorization')) return undefined;
      throw explainForAccount(err, account);
    }
  }

  async function withPassword(ctx: ObtainContext): Promise<TokenGrant> {
    if (!ctx.password) {
      throw new ProxyError('needs_authorization', `account ${account.username} has no refresh token and no password was given: log in through the proxy once`);
    }
    try {
      return await client.passwordGrant(account.upstreamUsername, ctx.password, ctx.signal);
    } catch (err) {
      if (oauthErrorCode(err) === 'invalid_grant') {
        throw new ProxyError('auth_failed', `the identity provider refused the password of ${account.username} (${oauthErrorText(err) ?? 'invalid_grant'})`, { cause: err });
      }
      throw explainForAccount(err, account);
    }
  }

  return {
    flow: 'password',
    obtain: async (ctx) => (await withRefreshToken(ctx)) ?? withPassword(ctx),
  };
}
