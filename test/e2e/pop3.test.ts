import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BIG_MESSAGE_ID, BOB, proxyRow, type TestAccount } from './lib/accounts.js';
import { curl, curlTarget, fetchmail, type Tls } from './lib/clients.js';
import { e2eEnv, idpControl } from './lib/env.js';
import { bodyOf, seedFile, sha256 } from './lib/maildir.js';
import { matrixIt, type MatrixRow } from './lib/matrix.js';
import { startProxy, TOKEN_PATTERN, type E2eProxy } from './lib/proxy.js';
import { run, runPython } from './lib/run.js';

/**
 * POP3 through the built proxy to Dovecot: curl (AUTH PLAIN, AUTH LOGIN: curl uses SASL when
 * the server offers it), python3 poplib (USER/PASS, AUTH PLAIN) and fetchmail (USER/PASS), on
 * every client TLS mode, upstream over implicit TLS (alice) or STLS (bob). Nothing is deleted:
 * the checks compare what the clients read with the Maildir files.
 */

const FILE = import.meta.filename;

function row(client: string, login: string, clientTls: Tls, account: TestAccount, checks: string): MatrixRow {
  return proxyRow('POP3', client, login, clientTls, account, checks);
}

interface PyPop3 {
  ok: boolean;
  error?: string;
  capa?: string[];
  login?: string;
  stat?: [number, number];
  big?: { listed: number; octets: number; length: number; sha256: string };
}

describe('POP3 through the proxy', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;
  const refreshTokens: string[] = [];
  const port = (tls: Tls) => proxy.port('pop3', tls);
  const bigSha = (account: TestAccount) => sha256(readFileSync(seedFile(account.username, 3)));
  const py = (account: TestAccount, tls: Tls, method: 'user' | 'plain' | 'authlogin', extra: Record<string, unknown> = {}) =>
    runPython<PyPop3>('pop3_client.py', {
      host: tls === 'none' ? '127.0.0.1' : 'localhost', port: port(tls), tls, ca: env.caFile,
      user: account.username, password: account.password, method, ...extra,
    });

  beforeAll(async () => {
    for (const a of [ALICE, BOB]) refreshTokens.push(await idpControl.refreshToken(a.username));
    proxy = await startProxy({
      name: 'pop3',
      listeners: [{ protocol: 'pop3', tls: 'none' }, { protocol: 'pop3', tls: 'starttls' }, { protocol: 'pop3', tls: 'implicit' }],
      accounts: [{ ...ALICE, refreshToken: refreshTokens[0]! }, { ...BOB, hashed: true, refreshToken: refreshTokens[1]! }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  matrixIt(FILE, row('python3 poplib', 'USER/PASS', 'none', ALICE, '10 MiB message bytes = Maildir file'), async () => {
    const r = await py(ALICE, 'none', 'user', { big_message_id: BIG_MESSAGE_ID });
    expect(r.error).toBeUndefined();
    expect(r.big?.listed).toBe(env.bigMessageBytes);
    expect(r.big?.length).toBe(env.bigMessageBytes);
    expect(r.big?.sha256).toBe(bigSha(ALICE));
  });

  matrixIt(FILE, row('python3 poplib', 'AUTH PLAIN', 'starttls', BOB, '10 MiB message bytes = Maildir file'), async () => {
    const r = await py(BOB, 'starttls', 'plain', { big_message_id: BIG_MESSAGE_ID });
    expect(r.error).toBeUndefined();
    expect(r.big?.sha256).toBe(bigSha(BOB));
  });

  matrixIt(FILE, row('python3 poplib', 'USER/PASS', 'implicit', BOB, 'STAT counts the seeded messages'), async () => {
    const r = await py(BOB, 'implicit', 'user');
    expect(r.error).toBeUndefined();
    expect(r.stat?.[0]).toBeGreaterThanOrEqual(3);
    expect(r.stat?.[1]).toBeGreaterThanOrEqual(env.bigMessageBytes);
  });

  matrixIt(FILE, row('python3 poplib', 'AUTH LOGIN', 'implicit', ALICE, '10 MiB message bytes = Maildir file'), async () => {
    const r = await py(ALICE, 'implicit', 'authlogin', { big_message_id: BIG_MESSAGE_ID });
    expect(r.error).toBeUndefined();
    expect(r.big?.sha256).toBe(bigSha(ALICE));
  });

  /** curl: LIST, then RETR of the message listed with the 10 MiB size. */
  async function curlBig(account: TestAccount, tls: Tls, mech: 'PLAIN' | 'LOGIN'): Promise<Buffer> {
    const auth = ['--login-options', `AUTH=${mech}`, '--user', `${account.username}:${account.password}`];
    const list = await curl([...auth, ...curlTarget('pop3', port(tls), tls)]);
    const n = new RegExp(`^(\\d+) ${env.bigMessageBytes}\\r?$`, 'm').exec(list.stdout)?.[1];
    expect(n, list.stdout).toBeDefined();
    return (await curl([...auth, ...curlTarget('pop3', port(tls), tls, n ?? '')], 120_000)).stdoutBytes;
  }

  matrixIt(FILE, row('curl', 'AUTH PLAIN', 'implicit', ALICE, '10 MiB message bytes = Maildir file'), async () => {
    const bytes = await curlBig(ALICE, 'implicit', 'PLAIN');
    expect(bytes.length).toBe(env.bigMessageBytes);
    expect(sha256(bytes)).toBe(bigSha(ALICE));
  });

  matrixIt(FILE, row('curl', 'AUTH LOGIN', 'starttls', BOB, '10 MiB message bytes = Maildir file'), async () => {
    expect(sha256(await curlBig(BOB, 'starttls', 'LOGIN'))).toBe(bigSha(BOB));
  });

  matrixIt(FILE, row('curl', 'AUTH PLAIN', 'none', BOB, '10 MiB message bytes = Maildir file'), async () => {
    expect(sha256(await curlBig(BOB, 'none', 'PLAIN'))).toBe(bigSha(BOB));
  });

  function expectSeedsFetched(messages: Buffer[], account: TestAccount): void {
    for (const n of [1, 2, 3] as const) {
      const fetched = messages.find((m) => m.includes(`<seed-${n}@e2e.example.com>`));
      expect(fetched, `seed ${n} fetched`).toBeDefined();
      expect(sha256(bodyOf(fetched!))).toBe(sha256(bodyOf(readFileSync(seedFile(account.username, n)))));
    }
  }

  matrixIt(FILE, row('fetchmail', 'USER/PASS', 'implicit', ALICE, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'pop3', port: port('implicit'), tls: 'implicit', user: ALICE.username, password: ALICE.password });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectSeedsFetched(messages, ALICE);
  });

  matrixIt(FILE, row('fetchmail', 'USER/PASS', 'starttls', BOB, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'pop3', port: port('starttls'), tls: 'starttls', user: BOB.username, password: BOB.password });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectSeedsFetched(messages, BOB);
  });

  matrixIt(FILE, row('fetchmail', 'USER/PASS', 'none', ALICE, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'pop3', port: port('none'), tls: 'none', user: ALICE.username, password: ALICE.password });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectSeedsFetched(messages, ALICE);
  });

  it('refuses a wrong local password with -ERR [AUTH], and never reaches the server', async () => {
    const before = proxy.events('upstream.connect').length;
    const r = await py(BOB, 'implicit', 'user', { password: 'not the password' });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/-ERR/);
    const c = await run('curl', ['-sS', '--user', `${ALICE.username}:wrong`, ...curlTarget('pop3', port('none'), 'none')]);
    expect(c.code).toBe(67); // CURLE_LOGIN_DENIED
    expect(proxy.events('upstream.connect').length).toBe(before);
  });

  it('never writes a token or a password to its log', () => {
    expect(proxy.logs.filter((l) => TOKEN_PATTERN.test(l))).toEqual([]);
    expect(proxy.linesContaining([...refreshTokens, ALICE.password, BOB.password])).toEqual([]);
  });
});
