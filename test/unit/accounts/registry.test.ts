import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { hashPassword, parseScryptHash, verifyScryptHash } from '../../../src/accounts/password.js';
import { AccountRegistry } from '../../../src/accounts/registry.js';
import { LoginThrottle } from '../../../src/accounts/throttle.js';
import type { AccountSettings } from '../../../src/config/resolve.js';
import { Secret } from '../../../src/secret.js';

const log = pino({ level: 'silent' });
const client = { address: '127.0.0.1', port: 1, protocol: 'imap' as const };

function account(username: string, localPassword: AccountSettings['localPassword']): AccountSettings {
  return {
    username, upstreamUsername: username, providerName: 'corp', flow: 'refresh_token', localPassword,
    oauth: { tokenUrl: 'http://127.0.0.1:1/token' }, saslMechanism: 'xoauth2', servers: {},
  };
}

describe('scrypt password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword(new Secret('correct horse'), 10);
    expect(hash).toMatch(/^scrypt\$ln=10,r=8,p=1\$/);
    expect(parseScryptHash(hash)).toBeDefined();
    expect(await verifyScryptHash(hash, new Secret('correct horse'))).toBe(true);
    expect(await verifyScryptHash(hash, new Secret('correct horsE'))).toBe(false);
    expect(await verifyScryptHash('scrypt$garbage', new Secret('x'))).toBe(false);
  });

  it('two hashes of one password differ (random salt)', async () => {
    expect(await hashPassword(new Secret('a'), 10)).not.toBe(await hashPassword(new Secret('a'), 10));
  });
});

describe('AccountRegistry', () => {
  it('refuses a wrong password every time, even after a right one', async () => {
    const hash = await hashPassword(new Secret('pw1'), 10);
    const reg = new AccountRegistry([account('alice@example.com', { kind: 'scrypt', hash })], log, new LoginThrottle({ freeFailures: 100 }));
    await expect(reg.authenticate('alice@example.com', new Secret('nope'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    expect((await reg.authenticate('ALICE@example.com', new Secret('pw1'), client)).username).toBe('alice@example.com');
    for (let i = 0; i < 3; i++) {
      await expect(reg.authenticate('alice@example.com', new Secret('nope'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    }
    await expect(reg.authenticate('bob@example.com', new Secret('pw1'), client)).rejects.toMatchObject({ code: 'auth_failed' });
  });

  it('checks a remembered password without another key derivation', async () => {
    const hash = await hashPassword(new Secret('pw1'), 14);
    const reg = new AccountRegistry([account('a', { kind: 'scrypt', hash })], log);
    await reg.authenticate('a', new Secret('pw1'), client);
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) await reg.authenticate('a', new Secret('pw1'), client);
    const perLoginMs = Number(process.hrtime.bigint() - started) / 1e6 / 100;
    // One scrypt at ln=14 costs tens of milliseconds; the digest path costs microseconds.
    expect(perLoginMs).toBeLessThan(2);
  });

  it('compares plain passwords exactly', async () => {
    const reg = new AccountRegistry([account('a', { kind: 'plain', value: new Secret('s3cret') })], log);
    await expect(reg.authenticate('a', new Secret('s3cret'), client)).resolves.toBeDefined();
    await expect(reg.authenticate('a', new Secret('s3cre'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    await expect(reg.authenticate('a', new Secret(''), client)).rejects.toMatchObject({ code: 'auth_failed' });
  });

  it('locks out an address after repeated failures without affecting another address', async () => {
    const throttle = new LoginThrottle({ freeFailures: 1, baseDelayMs: 1, maxDelayMs: 2, lockoutAfter: 3 });
    const reg = new AccountRegistry([account('a', { kind: 'plain', value: new Secret('pw') })], log, throttle);
    for (let i = 0; i < 3; i++) await expect(reg.authenticate('a', new Secret('bad'), client)).rejects.toThrow();
    await expect(reg.authenticate('a', new Secret('pw'), client)).rejects.toThrow(/too many/);
    await expect(reg.authenticate('a', new Secret('pw'), { ...client, address: '10.0.0.2' })).resolves.toBeDefined();
    expect(throttle.lockedOutCount()).toBe(1);
  });

  it('counts the identity provider\'s refusals of a flow "password" login, and only its acceptance clears them', async () => {
    const throttle = new LoginThrottle({ freeFailures: 1, baseDelayMs: 1, maxDelayMs: 2, lockoutAfter: 3 });
    const ropc = { ...account('r', { kind: 'provider' }), flow: 'password' as const };
    const reg = new AccountRegistry([ropc], log, throttle);
    // Finding the account is no success: the failures before it still count.
    await reg.settleLogin(client, false);
    await expect(reg.authenticate('r', new Secret('guess 2'), client)).resolves.toBe(ropc);
    await reg.settleLogin(client, false);
    await expect(reg.authenticate('r', new Secret('guess 3'), client)).resolves.toBe(ropc);
    await reg.settleLogin(client, false);
    await expect(reg.authenticate('r', new Secret('the real one'), client)).rejects.toThrow(/too many/);
    // Elsewhere, an accepted password clears the failures counted before it.
    const other = { ...client, address: '10.0.0.3' };
    await reg.settleLogin(other, false);
    await reg.settleLogin(other, false);
    await reg.settleLogin(other, true);
    await reg.settleLogin(other, false);
    await expect(reg.authenticate('r', new Secret('x'), other)).resolves.toBe(ropc);
  });

});

describe('LoginThrottle', () => {
  it('delays grow after the free failures and forget after the window', () => {
    let now = 0;
    const t = new LoginThrottle({ freeFailures: 2, baseDelayMs: 100, maxDelayMs: 350, lockoutAfter: 99, windowMs: 1000, now: () => now });
    expect([1, 2, 3, 4, 5, 6].map(() => t.recordFailure('x'))).toEqual([0, 0, 100, 200, 350, 350]);
    now = 5000;
    expect(t.recordFailure('x')).toBe(0);
  });
});
