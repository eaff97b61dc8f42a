import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AccountRegistry } from '../../../src/accounts/registry.js';
import { LoginThrottle, throttleKey } from '../../../src/accounts/throttle.js';
import type { AuthEvents } from '../../../src/accounts/types.js';
import type { AccountSettings } from '../../../src/config/resolve.js';
import { Secret } from '../../../src/secret.js';

const account: AccountSettings = {
  username: 'a', upstreamUsername: 'a', providerName: 'corp', flow: 'refresh_token', localPassword: { kind: 'plain', value: new Secret('pw') },
  oauth: { tokenUrl: 'http://127.0.0.1:1/token' }, saslMechanism: 'xoauth2', servers: {},
};

describe('throttle keys', () => {
  it('counts an IPv4 client by its address and an IPv6 client by its /64', () => {
    expect(throttleKey('192.0.2.7')).toBe('192.0.2.7');
    expect(throttleKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(throttleKey('2001:DB8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(throttleKey('2001:db8::5')).toBe('2001:db8:0:0::/64');
    expect(throttleKey('::1')).toBe('0:0:0:0::/64');
    expect(throttleKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(throttleKey('2001:0db8:0001:0002::')).toBe('2001:db8:1:2::/64');
  });

  it('locks out a whole IPv6 /64, not just the address that failed', () => {
    const t = new LoginThrottle({ freeFailures: 0, baseDelayMs: 0, maxDelayMs: 0, lockoutAfter: 3 });
    for (let i = 1; i <= 3; i++) t.recordFailure(`2001:db8:1:2::${i}`);
    expect(t.isLockedOut('2001:db8:1:2:dead:beef::9')).toBe(true);
    expect(t.isLockedOut('2001:db8:1:3::1')).toBe(false);
    expect(t.lockedOutCount()).toBe(1);
  });
});

describe('AccountRegistry events', () => {
  it('reports failures with the throttle response, and the lockout once', async () => {
    const seen: string[] = [];
    const events: AuthEvents = {
      loginFailed: (e) => seen.push(`fail ${e.protocol} ${e.delayMs > 0 ? 'delayed' : 'immediate'}${e.lockedOut ? ' locked' : ''}`),
      lockedOut: (e) => seen.push(`lockout ${e.address}`),
    };
    const registry = new AccountRegistry([account], pino({ level: 'silent' }), new LoginThrottle({ freeFailures: 1, baseDelayMs: 1, maxDelayMs: 1, lockoutAfter: 2 }), events);
    const client = { address: '10.0.0.9', port: 1, protocol: 'pop3' as const };
    for (let i = 0; i < 3; i++) await expect(registry.authenticate('a', new Secret('bad'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    expect(seen).toEqual(['fail pop3 immediate', 'lockout 10.0.0.9', 'fail pop3 delayed', 'fail pop3 immediate locked']);
  });
});
