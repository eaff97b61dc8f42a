import { describe, expect, it } from 'vitest';
import { accountRows } from '../../../src/admin/status-model.js';
import type { AccountTokenStatus } from '../../../src/tokens/types.js';

const NOW = 1_800_000_000_000;
const MINUTE = 60_000;

function rowFor(status: Partial<AccountTokenStatus>) {
  const full: AccountTokenStatus = { username: 'alice@example.com', flow: 'refresh_token', state: 'unknown', hasRefreshToken: true, refreshedBeforeStart: false, ...status };
  const [row] = accountRows({ accounts: [], status: () => [full], activeSessions: () => 1, signIn: () => ({}), now: () => NOW });
  return row!;
}

describe('status page rows: token state and last refresh', () => {
  it('a token from the store that the store dated: ok, refreshed at that time', () => {
    const row = rowFor({ state: 'ok', expiresAt: NOW + 50 * MINUTE, lastRefreshAt: NOW - 10 * MINUTE, refreshedBeforeStart: true });
    expect(row).toMatchObject({ stateLabel: 'ok', expires: 'in 50 min', lastRefresh: '10 min ago', lastRefreshAt: NOW - 10 * MINUTE, activeSessions: 1 });
  });

  it('a token from a store that did not record when it was obtained: "before restart", not "never"', () => {
    expect(rowFor({ state: 'ok', expiresAt: NOW + 50 * MINUTE, refreshedBeforeStart: true })).toMatchObject({ stateLabel: 'ok', lastRefresh: 'before restart', lastRefreshAt: undefined });
  });

  it('no token at all yet: "not used yet", never refreshed', () => {
    expect(rowFor({})).toMatchObject({ stateLabel: 'not used yet', expires: 'no access token yet', lastRefresh: 'never' });
  });
});
