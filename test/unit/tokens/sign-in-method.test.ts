import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { signInMethods } from '../../../src/tokens/sign-in-method.js';

/** Which interactive sign-in each preset and flow gets. */

function account(provider: string, flow: string) {
  const text = `listeners: [{ protocol: imap, listen: "127.0.0.1:1143" }]
providers: { ${provider}: { client_id: app, client_secret: s } }
accounts: [{ username: a@example.com, password: pw, provider: ${provider}, flow: ${flow} }]
`;
  return parseConfig(text).accounts[0]!;
}

describe('interactive sign-in methods', () => {
  it('Google signs in in the browser; its device flow is refused with the reason', () => {
    expect(signInMethods(account('google', 'authorization_code'))).toEqual(['browser']);
    expect(signInMethods(account('google', 'refresh_token'))).toEqual(['browser']);
    expect(() => account('google', 'device_code')).toThrow(/accounts\[0\]\.flow: Google's device flow does not allow the mail scope/);
  });

  it('Microsoft offers both, the flow deciding which comes first', () => {
    expect(signInMethods(account('microsoft', 'authorization_code'))).toEqual(['browser', 'device']);
    expect(signInMethods(account('microsoft', 'device_code'))).toEqual(['device', 'browser']);
    expect(account('microsoft', 'device_code').oauth.deviceAuthorizationUrl).toBe('https://login.microsoftonline.com/common/oauth2/v2.0/devicecode');
  });

  it('flows without a person in the loop have none', () => {
    expect(signInMethods(account('microsoft', 'client_credentials'))).toEqual([]);
  });
});
