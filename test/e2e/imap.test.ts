import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, curlTarget, fetchmail, type Tls } from './lib/clients.js';
import { e2eEnv, idpControl } from './lib/env.js';
import { bodyOf, findMessages, seedFile, sha256, uniqueMarker } from './lib/maildir.js';
import { ALICE, BIG_MESSAGE_ID, BOB, proxyRow, type TestAccount } from './lib/accounts.js';
import { matrixIt, type MatrixRow } from './lib/matrix.js';
import { run, runPython } from './lib/run.js';
import { startProxy, TOKEN_PATTERN, type ClientTls, type E2eProxy } from './lib/proxy.js';

/**
 * IMAP through the built proxy to Dovecot: curl, python3 imaplib and fetchmail log in with the
 * local password in every way they support, on every client TLS mode, with the proxy logging in
 * upstream over implicit TLS (alice's provider) or STARTTLS (bob's). The checks are on the
 * server side: the exact bytes of the seeded 10 MiB message, and an APPENDed message in the
 * Maildir.
 */

const FILE = import.meta.filename;
const BIG_ID = BIG_MESSAGE_ID;
type Account = TestAccount;

function row(client: string, login: string, clientTls: Tls, account: Account, checks: string): MatrixRow {
  return proxyRow('IMAP', client, login, clientTls, account, checks);
}

interface PyImap {
  ok: boolean;
  error?: string;
  pre_caps?: string[];
  post_caps?: string[];
  messages?: number;
  status?: string;
  append?: string;
  big?: { size: number; length: number; sha256: string };
}

describe('IMAP through the proxy', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;
  const refreshTokens: string[] = [];
  const port = (tls: ClientTls) => proxy.port('imap', tls);
  const py = (account: Account, tls: Tls, method: 'login' | 'plain' | 'authlogin', extra: Record<string, unknown> = {}) =>
    runPython<PyImap>('imap_client.py', {
      host: tls === 'none' ? '127.0.0.1' : 'localhost', port: port(tls), tls, ca: env.caFile,
      user: account.username, password: account.password, method, ...extra,
    });
  const bigSha = (account: Account) => sha256(readFileSync(seedFile(account.username, 3)));

  beforeAll(async () => {
    for (const a of [ALICE, BOB]) refreshTokens.push(await idpControl.refreshToken(a.username));
    proxy = await startProxy({
      name: 'imap',
      listeners: [{ protocol: 'imap', tls: 'none' }, { protocol: 'imap', tls: 'starttls' }, { protocol: 'imap', tls: 'implicit' }],
      accounts: [{ ...ALICE, hashed: true, refreshToken: refreshTokens[0]! }, { ...BOB, refreshToken: refreshTokens[1]! }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  matrixIt(FILE, row('python3 imaplib', 'LOGIN', 'none', ALICE, 'APPEND lands in the Maildir'), async () => {
    const marker = uniqueMarker('imaplib-append');
    const r = await py(ALICE, 'none', 'login', { ops: ['status', 'append'], append_marker: marker });
    expect(r.error).toBeUndefined();
    expect(r.pre_caps).toEqual(expect.arrayContaining(['AUTH=PLAIN', 'AUTH=LOGIN']));
    // After login the client sees Dovecot's own capabilities, relayed.
    expect(r.status).toMatch(/MESSAGES \d+/);
    expect(r.append).toBe('OK');
    const [file] = findMessages(ALICE.username, marker);
    expect(file, 'appended message in the Maildir').toBeDefined();
  });

  matrixIt(FILE, row('python3 imaplib', 'AUTHENTICATE PLAIN', 'starttls', BOB, '10 MiB message bytes = Maildir file'), async () => {
    const r = await py(BOB, 'starttls', 'plain', { ops: ['big'], big_message_id: BIG_ID });
    expect(r.error).toBeUndefined();
    expect(r.big).toEqual({ size: env.bigMessageBytes, length: env.bigMessageBytes, sha256: bigSha(BOB) });
  });

  matrixIt(FILE, row('python3 imaplib', 'LOGIN', 'implicit', BOB, 'SELECT sees the seeded messages'), async () => {
    const r = await py(BOB, 'implicit', 'login', { ops: ['status'] });
    expect(r.error).toBeUndefined();
    expect(r.messages).toBeGreaterThanOrEqual(3);
  });

  matrixIt(FILE, row('python3 imaplib', 'AUTHENTICATE LOGIN', 'none', BOB, 'STATUS of INBOX'), async () => {
    const r = await py(BOB, 'none', 'authlogin', { ops: ['status'] });
    expect(r.error).toBeUndefined();
    expect(r.status).toMatch(/MESSAGES \d+/);
  });

  matrixIt(FILE, row('python3 imaplib', 'AUTHENTICATE PLAIN', 'implicit', ALICE, '10 MiB message bytes = Maildir file'), async () => {
    const r = await py(ALICE, 'implicit', 'plain', { ops: ['big'], big_message_id: BIG_ID });
    expect(r.error).toBeUndefined();
    expect(r.big).toEqual({ size: env.bigMessageBytes, length: env.bigMessageBytes, sha256: bigSha(ALICE) });
  });

  /** curl: UID of the seeded big message, then its bytes. */
  async function curlBig(account: Account, tls: Tls, mech: 'PLAIN' | 'LOGIN'): Promise<Buffer> {
    const auth = ['--login-options', `AUTH=${mech}`, '--user', `${account.username}:${account.password}`];
    const search = await curl([...auth, '-X', `UID SEARCH HEADER Message-ID "${BIG_ID}"`, ...curlTarget('imap', port(tls), tls, 'INBOX')]);
    const uid = /\* SEARCH (\d+)/.exec(search.stdout)?.[1];
    expect(uid, search.stdout).toBeDefined();
    return (await curl([...auth, ...curlTarget('imap', port(tls), tls, `INBOX;UID=${uid}`)], 120_000)).stdoutBytes;
  }

  matrixIt(FILE, row('curl', 'AUTHENTICATE PLAIN', 'none', ALICE, '10 MiB message bytes = Maildir file'), async () => {
    const bytes = await curlBig(ALICE, 'none', 'PLAIN');
    expect(bytes.length).toBe(env.bigMessageBytes);
    expect(sha256(bytes)).toBe(bigSha(ALICE));
  });

  matrixIt(FILE, row('curl', 'AUTHENTICATE LOGIN', 'starttls', BOB, '10 MiB message bytes = Maildir file'), async () => {
    const bytes = await curlBig(BOB, 'starttls', 'LOGIN');
    expect(sha256(bytes)).toBe(bigSha(BOB));
  });

  matrixIt(FILE, row('curl', 'AUTHENTICATE PLAIN', 'implicit', ALICE, 'seed message 1 bytes = Maildir file'), async () => {
    const auth = ['--login-options', 'AUTH=PLAIN', '--user', `${ALICE.username}:${ALICE.password}`];
    const r = await curl([...auth, ...curlTarget('imap', port('implicit'), 'implicit', 'INBOX;UID=1')]);
    // Dovecot gave the seeded files UIDs 1..3 in an order of its own; UID 1 is one of them.
    const seeds = [1, 2, 3].map((n) => readFileSync(seedFile(ALICE.username, n as 1 | 2 | 3)));
    expect(seeds.some((s) => s.equals(r.stdoutBytes)), 'UID 1 is a seeded message, byte for byte').toBe(true);
  });

  /** fetchmail hands each message to its MDA with LF line ends and a Received: header of its own. */
  function expectSeedsFetched(messages: Buffer[], account: Account): void {
    for (const n of [1, 2, 3] as const) {
      const seed = readFileSync(seedFile(account.username, n));
      const fetched = messages.find((m) => m.includes(`<seed-${n}@e2e.example.com>`));
      expect(fetched, `seed ${n} fetched`).toBeDefined();
      expect(sha256(bodyOf(fetched!))).toBe(sha256(bodyOf(seed)));
    }
  }

  matrixIt(FILE, row('fetchmail', 'LOGIN', 'implicit', ALICE, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'imap', port: port('implicit'), tls: 'implicit', user: ALICE.username, password: ALICE.password });
    expect(result.code, result.stderr).toBe(0);
    expectSeedsFetched(messages, ALICE);
  });

  matrixIt(FILE, row('fetchmail', 'LOGIN', 'starttls', BOB, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'imap', port: port('starttls'), tls: 'starttls', user: BOB.username, password: BOB.password });
    expect(result.code, result.stderr).toBe(0);
    expectSeedsFetched(messages, BOB);
  });

  matrixIt(FILE, row('fetchmail', 'LOGIN', 'none', BOB, 'all seeded messages, bodies = Maildir'), async () => {
    const { messages, result } = await fetchmail({ protocol: 'imap', port: port('none'), tls: 'none', user: BOB.username, password: BOB.password });
    expect(result.code, result.stderr).toBe(0);
    expectSeedsFetched(messages, BOB);
  });

  it('refuses a wrong local password with AUTHENTICATIONFAILED, and never reaches the server', async () => {
    const before = proxy.events('upstream.connect').length;
    const r = await py(ALICE, 'implicit', 'login', { password: 'not the password' });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/AUTHENTICATIONFAILED/);
    const c = await run('curl', ['-sS', '--user', `${BOB.username}:wrong`, ...curlTarget('imap', port('none'), 'none', 'INBOX')]);
    expect(c.code).toBe(67); // CURLE_LOGIN_DENIED
    expect(proxy.events('upstream.connect').length).toBe(before);
  });

  it('refuses LOGIN in plaintext on the STARTTLS listener before STARTTLS', async () => {
    const r = await runPython<PyImap>('imap_client.py', {
      host: '127.0.0.1', port: port('starttls'), tls: 'none', ca: env.caFile, user: ALICE.username, password: ALICE.password, method: 'login',
    });
    expect(r.ok).toBe(false);
  });

  it('never writes a token or a password to its log', () => {
    expect(proxy.logs.length).toBeGreaterThan(0);
    expect(proxy.logs.filter((l) => TOKEN_PATTERN.test(l))).toEqual([]);
    expect(proxy.linesContaining([...refreshTokens, ALICE.password, BOB.password])).toEqual([]);
  });
});

describe('IMAP through the proxy, OAUTHBEARER upstream', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;

  beforeAll(async () => {
    proxy = await startProxy({
      name: 'imap-oauthbearer',
      sasl: 'oauthbearer',
      listeners: [{ protocol: 'imap', tls: 'none' }],
      accounts: [{ ...ALICE, refreshToken: await idpControl.refreshToken(ALICE.username) }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  matrixIt(FILE, { ...row('python3 imaplib', 'LOGIN', 'none', ALICE, '10 MiB message bytes = Maildir file'), serverTls: 'implicit, OAUTHBEARER' }, async () => {
    const logStart = statSync(env.logs.dovecot).size;
    const r = await runPython<PyImap>('imap_client.py', {
      host: '127.0.0.1', port: proxy.port('imap', 'none'), tls: 'none', ca: env.caFile,
      user: ALICE.username, password: ALICE.password, method: 'login', ops: ['big'], big_message_id: BIG_ID,
    });
    expect(r.error).toBeUndefined();
    expect(r.big?.sha256).toBe(sha256(readFileSync(seedFile(ALICE.username, 3))));
    const log = readFileSync(env.logs.dovecot).subarray(logStart).toString();
    expect(log).toMatch(/imap-login: Info: Login: user=<alice@example\.com>, method=OAUTHBEARER/);
  });
});
