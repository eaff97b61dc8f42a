import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleImapConnection } from '../../src/imap/session.js';
import { startListener, type Listener } from '../../src/net/listener.js';
import { Secret } from '../../src/secret.js';
import {
  FakeAuthenticator, FakeTokenManager, accountSettings, captureLog, listenerConfig, makeCertificate, startScriptedUpstream, type ScriptedUpstream,
} from './helpers/imap-kit.js';

const PASSWORD = 'pa ss"w\\rd';
let dir: string;
let upstream: ScriptedUpstream;
let listener: Listener;
let logs: ReturnType<typeof captureLog>;

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import imaplib']);
    return true;
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-real-'));
  const cert = await makeCertificate(dir);
  upstream = await startScriptedUpstream({ cert: cert.cert, key: cert.key, acceptTokens: ['tok'] });
  const server = { host: '127.0.0.1', port: upstream.port, tls: 'implicit' as const, caFile: cert.certFile, servername: 'localhost', insecureSkipVerify: false };
  const accounts = new FakeAuthenticator(new Map([['bob', { password: PASSWORD, account: accountSettings('bob', server) }]]));
  logs = captureLog();
  const config = listenerConfig();
  const deps = { listener: config, accounts, tokens: new FakeTokenManager([new Secret('tok')]), log: logs.log };
  listener = await startListener(config, (socket, client) => handleImapConnection(socket, client, deps), { log: logs.log });
});

afterAll(async () => {
  await listener.close(500);
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

describe('real IMAP clients through the proxy', () => {
  it('imapflow logs in (AUTHENTICATE PLAIN with SASL-IR), opens INBOX and logs out', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: listener.address().port, secure: false, doSTARTTLS: false, auth: { user: 'bob', pass: PASSWORD }, logger: false });
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    try {
      expect(client.mailbox && client.mailbox.exists).toBe(3);
    } finally {
      lock.release();
    }
    await client.logout();
    expect(upstream.afterLogin.some((line) => /^\S+ SELECT "?INBOX"?$/.test(line))).toBe(true);
  });

  it.skipIf(!hasPython)('python imaplib logs in with LOGIN and a password that needs quoting', async () => {
    const script = [
      'import imaplib, sys',
      `c = imaplib.IMAP4('127.0.0.1', ${listener.address().port})`,
      'print(c.login("bob", sys.argv[1])[0])',
      'print(c.select("INBOX")[1][0].decode())',
      'c.logout()',
    ].join('\n');
    const { stdout } = await promisify(execFile)('python3', ['-c', script, PASSWORD]);
    expect(stdout.split('\n')).toEqual(['OK', '3', '']);
    expect(logs.raw()).not.toContain('pa ss');
  });
});
