import type { AccountSettings } from '../../config/resolve.js';
import type { OAuthClientOptions } from '../oauth-client.js';
import type { TokenProvider } from '../types.js';
import { createClientCredentialsProvider } from './client-credentials.js';
import { createCommandProvider, type CommandProviderOptions } from './command.js';
import { createPasswordProvider } from './password.js';
import { createRefreshTokenProvider } from './refresh-token.js';
import { createStaticProvider } from './static.js';

export { staticTokenRejected } from './static.js';
export { noRefreshToken, reauthorizeAction } from './common.js';

/** Knobs for tests and tools; production uses the limits.ts defaults. */
export interface ProviderOptions {
  now?: (() => number) | undefined;
  oauth?: OAuthClientOptions | undefined;
  command?: CommandProviderOptions | undefined;
}

/**
 * One strategy per flow (SPEC section 2). device_code and authorization_code refresh exactly
 * like refresh_token once the store holds a refresh token; getting the first one is interactive
 * (`oauth-mail-proxy auth USER`) and lives elsewhere.
 */
export function createTokenProvider(account: AccountSettings, options: ProviderOptions = {}): TokenProvider {
  const oauth = { now: options.now, ...options.oauth };
  switch (account.flow) {
    case 'static':
      return createStaticProvider(account, { now: options.now });
    case 'refresh_token':
    case 'device_code':
    case 'authorization_code':
      return createRefreshTokenProvider(account, { oauth });
    case 'password':
      return createPasswordProvider(account, { oauth });
    case 'client_credentials':
      return createClientCredentialsProvider(account, { oauth });
    case 'command':
      return createCommandProvider(account, { now: options.now, ...options.command });
  }
}
