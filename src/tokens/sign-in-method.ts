import type { AccountSettings } from '../config/resolve.js';

/**
 * Which interactive sign-ins an account can use, best first. The account's flow decides the
 * default (device_code: a code typed on another device; authorization_code: the browser);
 * a refresh_token account can get its first refresh token either way when its provider has the
 * endpoint. Google's device flow refuses mail scopes, so its preset has no device endpoint and
 * its accounts sign in in the browser; Microsoft's preset has both.
 */

export type SignInMethod = 'browser' | 'device';

const INTERACTIVE_FLOWS = new Set(['refresh_token', 'device_code', 'authorization_code']);

export function signInMethods(account: AccountSettings): SignInMethod[] {
  if (!INTERACTIVE_FLOWS.has(account.flow) || !account.oauth.clientId) return [];
  const available: SignInMethod[] = [];
  if (account.oauth.authorizeUrl) available.push('browser');
  if (account.oauth.deviceAuthorizationUrl) available.push('device');
  return account.flow === 'device_code' ? available.reverse() : available;
}

/** The method to use: the one asked for if the account has it, else its default. */
export function chooseSignInMethod(account: AccountSettings, wanted?: SignInMethod): SignInMethod | undefined {
  const available = signInMethods(account);
  if (wanted !== undefined) return available.includes(wanted) ? wanted : undefined;
  return available[0];
}
