import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientDir, curl, curlTarget, msmtp, swaks } from './lib/clients.js';
import { e2eEnv, idpControl } from './lib/env.js';
import { bodyOf, seedFile, sha256, uniqueMarker, waitForMessage } from './lib/maildir.js';
import { matrixIt, type MatrixRow } from './lib/matrix.js';
import { run, runPython } from './lib/run.js';

/**
 * The servers themselves, without the proxy: they must demand bearer tokens and check them for
 * real, or every proxy test below would prove nothing. Clients that speak XOAUTH2 and
 * OAUTHBEARER natively (curl, python3, msmtp) log in with tokens from the mock identity provider.
 */

const FILE = import.meta.filename;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const BIG_ID = 'seed-3@e2e.example.com';

interface PyResult {
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

function direct(row: Omit<MatrixRow, 'path' | 'serverTls'>): MatrixRow {
  return { ...row, path: 'direct', serverTls: '-' };
}

describe('e2e servers (direct, no proxy)', () => {
  const env = e2eEnv();
  const base = { host: 'localhost', ca: env.caFile, user: ALICE };
  let token = '';
  const bigFile = () => readFileSync(seedFile(ALICE, 3));

  beforeAll(async () => {
    token = await idpControl.accessToken(ALICE);
  });

  matrixIt(FILE, direct({ client: 'python3 imaplib', protocol: 'IMAP', login: 'AUTHENTICATE XOAUTH2', clientTls: 'implicit', checks: '10 MiB message bytes = Maildir file' }), async () => {
    const r = await runPython<PyResult & { big: { size: number; length: number; sha256: string }; pre_caps: string[] }>('imap_client.py', {
      ...base, port: env.ports.imaps, tls: 'implicit', method: 'xoauth2', token, ops: ['big'], big_message_id: BIG_ID,
    });
    expect(r.error).toBeUndefined();
    expect(r.pre_caps).toEqual(expect.arrayContaining(['AUTH=XOAUTH2', 'AUTH=OAUTHBEARER', 'LOGINDISABLED']));
    expect(r.pre_caps).not.toContain('AUTH=PLAIN');
    expect(r.big.size).toBe(env.bigMessageBytes);
    expect(r.big.length).toBe(env.bigMessageBytes);
    expect(r.big.sha256).toBe(sha256(bigFile()));
  });

  matrixIt(FILE, direct({ client: 'python3 imaplib', protocol: 'IMAP', login: 'AUTHENTICATE XOAUTH2', clientTls: 'STARTTLS', checks: 'login, SELECT' }), async () => {
    const r = await runPython<PyResult & { messages: number }>('imap_client.py', {
      ...base, port: env.ports.imap, tls: 'starttls', method: 'xoauth2', token,
    });
    expect(r.error).toBeUndefined();
    expect(r.messages).toBeGreaterThanOrEqual(3);
  });

  matrixIt(FILE, direct({ client: 'curl', protocol: 'IMAP', login: '--oauth2-bearer', clientTls: 'implicit', checks: 'seed message 1 bytes = Maildir file' }), async () => {
    const r = await curl(['--user', ALICE, '--oauth2-bearer', token, ...curlTarget('imap', env.ports.imaps, 'implicit', 'INBOX;UID=1')]);
    expect(r.stdoutBytes.equals(readFileSync(seedFile(ALICE, 1)))).toBe(true);
  });

  matrixIt(FILE, direct({ client: 'python3 poplib', protocol: 'POP3', login: 'AUTH XOAUTH2', clientTls: 'implicit', checks: '10 MiB message bytes = Maildir file' }), async () => {
    const r = await runPython<PyResult & { big: { listed: number; length: number; sha256: string } }>('pop3_client.py', {
      ...base, port: env.ports.pop3s, tls: 'implicit', method: 'xoauth2', token, big_message_id: BIG_ID,
    });
    expect(r.error).toBeUndefined();
    expect(r.big.listed).toBe(env.bigMessageBytes);
    expect(r.big.length).toBe(env.bigMessageBytes);
    expect(r.big.sha256).toBe(sha256(bigFile()));
  });

  matrixIt(FILE, direct({ client: 'curl', protocol: 'POP3', login: '--oauth2-bearer', clientTls: 'STARTTLS', checks: 'LIST shows the 10 MiB size' }), async () => {
    const r = await curl(['--user', ALICE, '--oauth2-bearer', token, ...curlTarget('pop3', env.ports.pop3, 'starttls')]);
    expect(r.stdout).toMatch(new RegExp(`^\\d+ ${env.bigMessageBytes}\\r?$`, 'm'));
  });

  matrixIt(FILE, direct({ client: 'python3 smtplib', protocol: 'SMTP', login: 'AUTH XOAUTH2', clientTls: 'STARTTLS', checks: 'delivered to Maildir' }), async () => {
    const marker = uniqueMarker('direct-smtplib');
    const r = await runPython<PyResult & { auth_offered: string[] }>('smtp_client.py', {
      ...base, port: env.ports.submission, tls: 'starttls', method: 'xoauth2', token, sender: ALICE, rcpt: BOB, marker,
    });
    expect(r.error).toBeUndefined();
    expect(r.auth_offered.sort()).toEqual(['OAUTHBEARER', 'XOAUTH2']);
    await waitForMessage(BOB, marker);
  });

  matrixIt(FILE, direct({ client: 'msmtp', protocol: 'SMTP', login: 'auth xoauth2', clientTls: 'implicit', checks: 'delivered to Maildir' }), async () => {
    const marker = uniqueMarker('direct-msmtp');
    const r = await msmtp({
      port: env.ports.submissions, tls: 'implicit', auth: 'xoauth2', user: ALICE, secret: token, from: ALICE, to: BOB,
      message: `To: ${BOB}\nSubject: ${marker}\n\nSent by msmtp directly.\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    await waitForMessage(BOB, marker);
  });

  matrixIt(FILE, direct({ client: 'curl', protocol: 'SMTP', login: '--oauth2-bearer', clientTls: 'implicit', checks: '11 MiB message delivered intact' }), async () => {
    const marker = uniqueMarker('direct-curl-big');
    const line = `${'x'.repeat(74)}\r\n`;
    const body = line.repeat(Math.ceil((11 * 1024 * 1024) / line.length));
    const file = join(clientDir('curl-smtp'), 'message.eml');
    writeFileSync(file, `From: ${ALICE}\r\nTo: ${BOB}\r\nSubject: ${marker}\r\n\r\n${body}`);
    await curl(['--user', ALICE, '--oauth2-bearer', token, '--mail-from', ALICE, '--mail-rcpt', BOB, '-T', file,
      ...curlTarget('smtp', env.ports.submissions, 'implicit')], 120_000);
    const stored = await waitForMessage(BOB, marker, 60_000);
    expect(sha256(bodyOf(stored))).toBe(sha256(body));
  }, 180_000);

  describe('refusals', () => {
    // Dovecot delays every auth from an address after failures from it (auth penalty: 2, 4, 8,
    // 15 s) until a login from there succeeds; each refusal is followed by a good login so that
    // neither these tests nor the next file's logins wait on it.
    afterEach(async () => {
      const good = await idpControl.accessToken(ALICE);
      await curl(['--user', ALICE, '--oauth2-bearer', good, '-X', 'NOOP', ...curlTarget('imap', env.ports.imaps, 'implicit', 'INBOX')]);
    });

    it('refuses a wrong token over IMAP, with the JSON challenge Gmail sends (RFC 7628 section 3.2.2)', async () => {
      const lines = await rawImapAuth(env.ports.imaps, `user=${ALICE}\x01auth=Bearer at_not_a_real_token_at_all\x01\x01`);
      const challenge = lines.find((l) => l.startsWith('+ '));
      expect(challenge).toBeDefined();
      const json = JSON.parse(Buffer.from(challenge!.slice(2), 'base64').toString()) as Record<string, string>;
      expect(json.status).toBe('401');
      expect(json.schemes).toMatch(/bearer/i);
      expect(lines.at(-1)).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    });

    it('refuses a revoked access token (IMAP)', async () => {
      const revoked = await idpControl.accessToken(ALICE);
      await idpControl.revokeToken(revoked);
      const r1 = await runPython<PyResult>('imap_client.py', { ...base, port: env.ports.imaps, tls: 'implicit', method: 'xoauth2', token: revoked });
      expect(r1.ok).toBe(false);
      expect(r1.error).toMatch(/AUTHENTICATIONFAILED/);
    });

    it('refuses an expired access token (POP3)', async () => {
      const expired = await idpControl.accessToken(ALICE, 1);
      await new Promise((r) => setTimeout(r, 1500));
      const r2 = await runPython<PyResult>('pop3_client.py', { ...base, port: env.ports.pop3s, tls: 'implicit', method: 'xoauth2', token: expired });
      expect(r2.ok).toBe(false);
      expect(r2.error).toMatch(/-ERR/);
    });

    it('refuses a wrong token over SMTP', async () => {
      const r = await runPython<PyResult>('smtp_client.py', {
        ...base, port: env.ports.submissions, tls: 'implicit', method: 'xoauth2', token: 'at_wrong_wrong_wrong_wrong_wrong', sender: ALICE, rcpt: BOB, marker: 'never',
      });
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/535/);
    });

    it('offers no password mechanism over SMTP', async () => {
      const s = await swaks({ port: env.ports.submission, tls: 'starttls', auth: 'PLAIN', user: ALICE, password: 'x', from: ALICE, to: BOB, marker: 'never' });
      expect(s.code).not.toBe(0);
      expect(s.stdout + s.stderr).toMatch(/requested type not available/);
    });

    it('refuses IMAP LOGIN with a password (no plaintext login anywhere)', async () => {
      const r = await runPython<PyResult>('imap_client.py', { ...base, port: env.ports.imaps, tls: 'implicit', method: 'login', password: token });
      expect(r.ok).toBe(false);
      const c = await run('curl', ['-sS', '--max-time', '20', '--user', `${ALICE}:${token}`, ...curlTarget('pop3', env.ports.pop3s, 'implicit')]);
      expect(c.code).not.toBe(0);
    });
  });
});

/** One AUTHENTICATE XOAUTH2 with an initial response, answering the server's challenge with an empty line. */
async function rawImapAuth(port: number, xoauth2: string): Promise<string[]> {
  const env = e2eEnv();
  const socket = tlsConnect({ host: 'localhost', port, ca: readFileSync(env.caFile), servername: 'localhost' });
  const lines: string[] = [];
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer; got ${lines.join(' | ')}`)); }, 15_000);
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('latin1');
      let at: number;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        lines.push(line);
        if (lines.length === 1) socket.write(`a AUTHENTICATE XOAUTH2 ${Buffer.from(xoauth2).toString('base64')}\r\n`);
        else if (line.startsWith('+ ')) socket.write('\r\n');
        else if (line.startsWith('a ')) {
          clearTimeout(timer);
          socket.end('b LOGOUT\r\n');
          resolve(lines);
        }
      }
    });
  });
}

