import type { Tls } from './clients.js';
import type { MatrixRow } from './matrix.js';
import type { UpstreamMode } from './proxy.js';

/**
 * The proxy accounts of the suite. Each maps to one Dovecot/Postfix user; the upstream mode
 * says which provider (and so which server ports) the proxy uses for it. Local passwords are
 * what clients type; alice's has quotes, a backslash and spaces to test every client's quoting.
 */

export interface TestAccount {
  username: string;
  password: string;
  upstream: UpstreamMode;
}

export const ALICE: TestAccount = { username: 'alice@example.com', password: 'al1ce local "pw" \\ 1', upstream: 'implicit' };
export const BOB: TestAccount = { username: 'bob@example.com', password: 'bob-local-pw', upstream: 'starttls' };
/** Used by the token tests, whose refresh tokens get revoked. */
export const CAROL: TestAccount = { username: 'carol@example.com', password: 'carol-local-pw', upstream: 'implicit' };

export const BIG_MESSAGE_ID = 'seed-3@e2e.example.com';

export const TLS_LABEL: Record<Tls | UpstreamMode, string> = { none: 'none', starttls: 'STARTTLS', implicit: 'implicit' };

export function proxyRow(protocol: MatrixRow['protocol'], client: string, login: string, clientTls: Tls, account: TestAccount, checks: string): MatrixRow {
  return { path: 'proxy', client, protocol, login, clientTls: TLS_LABEL[clientTls], serverTls: TLS_LABEL[account.upstream], checks };
}
