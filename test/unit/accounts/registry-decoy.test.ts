import pino from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { hashPassword, verifyScryptHash } from '../../../src/accounts/password.js';
import { AccountRegistry } from '../../../src/accounts/registry.js';
import { LoginThrottle } from '../../../src/accounts/throttle.js';
import type { AccountSettings } from '../../../src/config/resolve.js';
import { Secret } from '../../../src/secret.js';

/**
 * An unknown user must cost what a wrong password for a known one costs, or the time of the
 * answer tells which user names exist. Checked by what the registry verifies against, not by
 * the clock: the costliest configured hash, or none when known users have none either.
 */

vi.mock('../../../src/accounts/password.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/accounts/password.js')>();
  return { ...real, verifyScryptHash: vi.fn(real.verifyScryptHash) };
});

const log = pino({ level: 'silent' });
const client = { address: '127.0.0.1', port: 1, protocol: 'imap' as const };

function account(username: string, localPassword: AccountSettings['localPassword']): AccountSettings {
  return {
    username, upstreamUsername: username, providerName: 'corp', flow: 'refresh_token', localPassword,
    oauth: { tokenUrl: 'http://127.0.0.1:1/token' }, saslMechanism: 'xoauth2', servers: {},
  };
}

const verified = vi.mocked(verifyScryptHash);
beforeEach(() => verified.mockClear());

describe('AccountRegistry, an unknown user', () => {
  it('is checked against the costliest configured hash, after a reload too', async () => {
    const cheap = await hashPassword(new Secret('pw1'), 10);
    const dear = await hashPassword(new Secret('pw2'), 12);
    const reg = new AccountRegistry([account('a', { kind: 'scrypt', hash: cheap }), account('b', { kind: 'scrypt', hash: dear })], log, new LoginThrottle({ freeFailures: 100 }));
    await expect(reg.authenticate('nobody', new Secret('guess'), client)).rejects.toMatchObject({ code: 'auth_failed', message: 'unknown user' });
    expect(verified.mock.calls.map(([hash]) => hash)).toEqual([dear]);
    reg.replace([account('a', { kind: 'scrypt', hash: cheap })]);
    await expect(reg.authenticate('nobody', new Secret('guess'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    expect(verified.mock.calls.map(([hash]) => hash)).toEqual([dear, cheap]);
  });

  it('costs no key derivation when no account has a hash, as a known user\'s plain password costs none', async () => {
    const reg = new AccountRegistry([account('p', { kind: 'plain', value: new Secret('pw') })], log, new LoginThrottle({ freeFailures: 100 }));
    await expect(reg.authenticate('nobody', new Secret('guess'), client)).rejects.toMatchObject({ code: 'auth_failed' });
    expect(verified).not.toHaveBeenCalled();
  });
});
