import { describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/resolve.js';
import { localPasswordChanges } from '../../src/reload.js';
import { Secret } from '../../src/secret.js';
import { accountFor } from '../fakes/token-fixtures.js';

/** The reload line names accounts whose local password changed; the token manager does not see those. */

function configWith(...accounts: Config['accounts']): Config {
  return { listeners: [], accounts, tokenStore: { path: 'x', keyFile: 'y' }, log: { level: 'info' } } as unknown as Config;
}

describe('localPasswordChanges', () => {
  it('names a kept account whose plain password or hash changed, and no other', () => {
    const alice = accountFor('https://idp.example/token');
    const bob = accountFor('https://idp.example/token', { username: 'bob@example.com', localPassword: { kind: 'scrypt', hash: 'scrypt$a' } });
    const before = configWith(alice, bob);
    expect(localPasswordChanges(before, configWith({ ...alice, localPassword: { kind: 'plain', value: new Secret('local') } }, bob))).toEqual([]);
    expect(localPasswordChanges(before, configWith({ ...alice, localPassword: { kind: 'plain', value: new Secret('other') } }, bob))).toEqual([alice.username]);
    expect(localPasswordChanges(before, configWith(alice, { ...bob, username: 'BOB@example.com', localPassword: { kind: 'scrypt', hash: 'scrypt$b' } }))).toEqual(['BOB@example.com']);
    const carol = accountFor('https://idp.example/token', { username: 'carol@example.com' });
    expect(localPasswordChanges(before, configWith(alice, carol))).toEqual([]);
  });
});
