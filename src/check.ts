import type { Config } from './config/resolve.js';
import type { Protocol } from './config/schema.js';
import { describeError } from './errors.js';
import { loginImapUpstream } from './imap/upstream-login.js';
import { loginPop3Upstream } from './pop3/upstream-login.js';
import { loginSmtpUpstream } from './smtp/upstream-client.js';
import type { TokenManager } from './tokens/types.js';

/** One account's line in `oauth-mail-proxy check`. */
export interface CheckRow {
  account: string;
  flow: string;
  token: string;
  logins: Partial<Record<Protocol, string>>;
  ok: boolean;
}

const CHECK_TIMEOUT_MS = 60_000;

/** Logs in upstream with a real token for every account and protocol a listener serves. */
export async function checkAccounts(config: Config, tokens: TokenManager): Promise<CheckRow[]> {
  const served = new Set(config.listeners.map((l) => l.protocol));
  const rows: CheckRow[] = [];
  for (const account of config.accounts) {
    const row: CheckRow = { account: account.username, flow: account.flow, token: '', logins: {}, ok: true };
    rows.push(row);
    if (account.flow === 'password') {
      row.token = 'checked at the first client login (password flow)';
      continue;
    }
    const imap = account.servers.imap;
    try {
      await tokens.withFreshToken(account.username, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }, async (token) => {
        row.token = 'ok';
        if (served.has('imap') && imap) {
          const session = await loginImapUpstream(imap, account.upstreamUsername, token, account.saslMechanism, AbortSignal.timeout(CHECK_TIMEOUT_MS));
          session.socket.end('omp9 LOGOUT\r\n');
          row.logins.imap = 'ok';
        }
      });
    } catch (err) {
      row.ok = false;
      const reason = describeError(err);
      if (row.token === 'ok') row.logins.imap = `FAILED: ${reason}`;
      else row.token = `FAILED: ${reason}`;
    }
    if (row.token === 'ok' && served.has('pop3')) await checkPop3(account, tokens, row);
    if (row.token === 'ok' && served.has('smtp')) await checkSmtp(account, tokens, row);
    for (const protocol of served) {
      if (!account.servers[protocol]) row.logins[protocol] = 'no server configured';
      else if (!row.logins[protocol] && !['imap', 'pop3', 'smtp'].includes(protocol)) row.logins[protocol] = 'not checked yet';
    }
  }
  return rows;
}

/** A POP3 login of its own, so that an IMAP failure does not hide the POP3 result (or the reverse). */
async function checkPop3(account: Config['accounts'][number], tokens: TokenManager, row: CheckRow): Promise<void> {
  const pop3 = account.servers.pop3;
  if (!pop3) return;
  try {
    await tokens.withFreshToken(account.username, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }, async (token) => {
      const session = await loginPop3Upstream(pop3, account.upstreamUsername, token, account.saslMechanism, AbortSignal.timeout(CHECK_TIMEOUT_MS));
      session.socket.end('QUIT\r\n');
    });
    row.logins.pop3 = 'ok';
  } catch (err) {
    row.ok = false;
    row.logins.pop3 = `FAILED: ${describeError(err)}`;
  }
}

/** An SMTP login of its own (AUTH XOAUTH2 or OAUTHBEARER, then QUIT): no mail is sent. */
async function checkSmtp(account: Config['accounts'][number], tokens: TokenManager, row: CheckRow): Promise<void> {
  const smtp = account.servers.smtp;
  if (!smtp) return;
  try {
    await tokens.withFreshToken(account.username, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }, async (token) => {
      const session = await loginSmtpUpstream(smtp, account.upstreamUsername, token, account.saslMechanism, AbortSignal.timeout(CHECK_TIMEOUT_MS));
      await session.quit();
    });
    row.logins.smtp = 'ok';
  } catch (err) {
    row.ok = false;
    row.logins.smtp = `FAILED: ${describeError(err)}`;
  }
}

export function formatCheckTable(rows: CheckRow[]): string {
  const protocols = [...new Set(rows.flatMap((r) => Object.keys(r.logins)))] as Protocol[];
  const header = ['account', 'flow', 'token', ...protocols];
  const body = rows.map((r) => [r.account, r.flow, r.token, ...protocols.map((p) => r.logins[p] ?? '-')]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}
