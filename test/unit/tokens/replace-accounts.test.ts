import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp } from '../../../src/demo/mock-idp.js';
import { Secret } from '../../../src/secret.js';
import { openFileStore } from '../../../src/store/file-store.js';
import { createTokenManager } from '../../../src/tokens/manager.js';
import { accountFor, captureLogger, signal, tempDir } from '../../fakes/token-fixtures.js';

/** SIGHUP's part in the token manager: what a reloaded account list keeps and what it starts afresh. */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const idp = await startMockIdp({ rotateRefreshTokens: true });
  cleanups.push(() => idp.close());
  const dir = await tempDir('omp-replace-');
  const store = await openFileStore({ path: join(dir, 'tokens.enc'), keyFile: join(dir, 'tokens.key') }, {});
  cleanups.push(() => store.close());
  const alice = accountFor(idp.tokenUrl, { refreshTokenSeed: new Secret(idp.issueRefreshToken('alice@example.com')) });
  const manager = createTokenManager({ accounts: [alice], store, log: captureLogger().log });
  cleanups.push(() => manager.stop());
  manager.start();
  return { idp, store, alice, manager };
}

describe('TokenManager.replaceAccounts', () => {
  it('keeps the cached token of an unchanged account, adds a new one and drops a removed one (its stored tokens stay)', async () => {
    const { idp, store, alice, manager } = await setup();
    const first = await manager.getToken(alice.username, { signal: signal() });
    const bob = accountFor(idp.tokenUrl, { username: 'bob@example.com', upstreamUsername: 'bob@example.com', refreshTokenSeed: new Secret(idp.issueRefreshToken('bob@example.com')) });
    const requests = idp.count('token');
    // The same settings in new objects (as a reload parses them), plus Bob.
    const changes = await manager.replaceAccounts([{ ...alice, oauth: { ...alice.oauth } }, bob]);
    expect(changes).toEqual({ added: ['bob@example.com'], removed: [], changed: [] });
    expect((await manager.getToken(alice.username, { signal: signal() })).reveal()).toBe(first.reveal());
    expect(idp.count('token')).toBe(requests);
    await manager.getToken(bob.username, { signal: signal() });
    expect(await manager.replaceAccounts([bob])).toEqual({ added: [], removed: [alice.username], changed: [] });
    await expect(manager.getToken(alice.username, { signal: signal() })).rejects.toMatchObject({ code: 'config_invalid' });
    expect((await store.get(alice.username))?.refreshToken).toBeDefined();
  });

  it('starts a changed account afresh from the store, with the rotated refresh token', async () => {
    const { idp, alice, manager } = await setup();
    await manager.getToken(alice.username, { signal: signal() });
    const changed = { ...alice, oauth: { ...alice.oauth, scope: 'mail other' } };
    expect(await manager.replaceAccounts([changed])).toEqual({ added: [], removed: [], changed: [alice.username] });
    // A forced refresh works: the new entry read the rotated refresh token from the store.
    await expect(manager.getToken(alice.username, { signal: signal(), force: true })).resolves.toBeDefined();
    expect(idp.requests.filter((r) => r.endpoint === 'token').every((r) => r.status === 200)).toBe(true);
  });

  it('sees a new refresh token in the config, and starts the account from it after a revoked grant', async () => {
    const { idp, alice, manager } = await setup();
    await manager.getToken(alice.username, { signal: signal() });
    idp.revokeUser(alice.username);
    await expect(manager.getToken(alice.username, { signal: signal(), force: true })).rejects.toMatchObject({ code: 'needs_authorization' });
    // The operator pastes a new refresh token and reloads: only the secret differs.
    const pasted = { ...alice, refreshTokenSeed: new Secret(idp.issueRefreshToken(alice.username)) };
    expect(await manager.replaceAccounts([pasted])).toEqual({ added: [], removed: [], changed: [alice.username] });
    await expect(manager.getToken(alice.username, { signal: signal() })).resolves.toBeDefined();
  });

  it('tells a changed client secret or static token from an unchanged one, and keeps the token when only the local password changed', async () => {
    const { idp, alice, manager } = await setup();
    const first = await manager.getToken(alice.username, { signal: signal() });
    const newPassword = { ...alice, localPassword: { kind: 'plain' as const, value: new Secret('a new local password') } };
    expect(await manager.replaceAccounts([newPassword])).toEqual({ added: [], removed: [], changed: [] });
    expect((await manager.getToken(alice.username, { signal: signal() })).reveal()).toBe(first.reveal());
    const newSecret = { ...newPassword, oauth: { ...alice.oauth, clientSecret: new Secret('another client secret') } };
    expect(await manager.replaceAccounts([newSecret])).toEqual({ added: [], removed: [], changed: [alice.username] });
    const staticToken = { ...newSecret, flow: 'static' as const, staticToken: { value: new Secret(idp.issueAccessToken(alice.username)) } };
    await manager.replaceAccounts([staticToken]);
    const otherStatic = { ...staticToken, staticToken: { value: new Secret(idp.issueAccessToken(alice.username)) } };
    expect(await manager.replaceAccounts([otherStatic])).toEqual({ added: [], removed: [], changed: [alice.username] });
  });
});
