import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import { CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, readStore, runCli, seedStore, type ProxyRun } from './harness.js';
import { BIG, BIG_PASSWORD, PRINTER, startSmtpProxy, startSmtpUpstreams, testMessage, writeSmtpProxyConfig, type SmtpUpstreams } from './smtp-harness.js';

/**
 * The upstream side through the built proxy (issue 3): each step's reply is the server's own,
 * the token manager's refresh-and-retry and failure split apply to SMTP, large messages stream,
 * long tokens go in the two-step AUTH form.
 */

let up: SmtpUpstreams;
const runs: ProxyRun[] = [];
let shared: { run: ProxyRun; port: number };
const HOUR = 3_600_000;

async function proxyWith(seed?: { accessToken: string; expiresInMs: number; refreshToken?: string }): Promise<{ run: ProxyRun; port: number }> {
  const refreshToken = seed?.refreshToken ?? up.idp.issueRefreshToken(USER);
  const { dir, configPath } = writeSmtpProxyConfig(up, { listeners: [{ tls: 'none' }], refreshToken });
  if (seed) {
    await seedStore(dir, {
      refreshToken,
      accessToken: seed.accessToken,
      accessTokenExpiresAt: Date.now() + seed.expiresInMs,
      seedDigest: createHash('sha256').update(refreshToken).digest('hex'),
    });
  }
  const { run, ports } = await startSmtpProxy(configPath, dir, 1);
  runs.push(run);
  return { run, port: ports[0]! };
}

/** EHLO and AUTH PLAIN; returns the client and the AUTH reply. */
async function login(port: number, user = USER, password = LOCAL_PASSWORD): Promise<{ c: SmtpWireClient; code: number; lines: string[] }> {
  const c = await SmtpWireClient.open({ port });
  await c.command('EHLO client.test');
  return { c, ...(await c.authPlain(user, password)) };
}

/** A whole transaction after login; returns the final reply. */
async function send(c: SmtpWireClient, message: Buffer, from = USER, to = ['bob@example.org']): Promise<number> {
  expect((await c.command(`MAIL FROM:<${from}>`)).code).toBe(250);
  for (const rcpt of to) expect((await c.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
  return (await c.data(message)).end.code;
}

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0);
}

beforeAll(async () => {
  up = await startSmtpUpstreams({ rotateRefreshTokens: false });
  shared = await proxyWith();
});

afterAll(async () => {
  for (const run of runs) await run.stop();
  await up?.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('each reply is the server\'s reply to that step', () => {
  it('upstream refuses one recipient of three: the client sees that 5xx (every line) and the other two are delivered', async () => {
    up.smtp.refuseRecipients.set('nobody@example.org', {
      code: 550, text: ['The email account that you tried to reach does not exist.', 'Please check the address for typos.'],
    });
    const { c } = await login(shared.port);
    try {
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
      expect((await c.command('RCPT TO:<one@example.org>')).code).toBe(250);
      expect(await c.command('RCPT TO:<nobody@example.org>')).toEqual({
        code: 550,
        lines: ['550-5.1.1 The email account that you tried to reach does not exist.', '550 5.1.1 Please check the address for typos.'],
      });
      expect((await c.command('RCPT TO:<three@example.org>')).code).toBe(250);
      const message = testMessage('two of three');
      expect((await c.data(message)).end.code).toBe(250);
      const got = up.smtp.messages.find((m) => m.data.includes('Subject: two of three'));
      expect(got?.to).toEqual(['one@example.org', 'three@example.org']);
      expect(got?.data.equals(message)).toBe(true);
    } finally {
      c.close();
      up.smtp.refuseRecipients.clear();
    }
  });

  it('upstream refuses the message: the client sees the upstream\'s reply, and the session goes on', async () => {
    const { c } = await login(shared.port);
    try {
      up.smtp.refuseData = { code: 554, text: 'Message rejected: this looks like spam' };
      await c.command(`MAIL FROM:<${USER}>`);
      await c.command('RCPT TO:<bob@example.org>');
      expect((await c.data(testMessage('spam'))).end).toEqual({ code: 554, lines: ['554 5.6.0 Message rejected: this looks like spam'] });
      up.smtp.refuseData = undefined;
      // The next transaction in the same session starts clean (RSET upstream first) and is delivered.
      expect(await send(c, testMessage('after refusal'))).toBe(250);
      expect(up.smtp.messages.some((m) => m.data.includes('Subject: after refusal'))).toBe(true);
    } finally {
      up.smtp.refuseData = undefined;
      c.close();
    }
  });

  it('a client RSET in the middle of a transaction, then a new one: only the second is sent', async () => {
    const { c } = await login(shared.port);
    try {
      await c.command(`MAIL FROM:<${USER}>`);
      await c.command('RCPT TO:<dropped@example.org>');
      expect((await c.command('RSET')).code).toBe(250);
      expect(await send(c, testMessage('after rset'), USER, ['kept@example.org'])).toBe(250);
      expect(up.smtp.messages.find((m) => m.data.includes('Subject: after rset'))?.to).toEqual(['kept@example.org']);
    } finally {
      c.close();
    }
  });
});

describe('tokens', () => {
  it('an expired access token: one refresh, then the send succeeds', async () => {
    const { port } = await proxyWith({ accessToken: up.idp.issueAccessToken(USER, 1), expiresInMs: -60_000 });
    up.idp.resetRequests();
    const { c, code } = await login(port);
    try {
      expect(code).toBe(235);
      expect(up.idp.count('token', 'refresh_token')).toBe(1);
      expect(await send(c, testMessage('after expiry'))).toBe(250);
    } finally {
      c.close();
    }
  });

  it('a token the server rejects although it looked valid: one forced refresh, one retry, the send succeeds', async () => {
    const revoked = up.idp.issueAccessToken(USER, 3600);
    up.idp.revoke(revoked);
    const { port } = await proxyWith({ accessToken: revoked, expiresInMs: HOUR });
    up.idp.resetRequests();
    const before = up.smtp.auths.length;
    const { c, code } = await login(port);
    try {
      expect(code).toBe(235);
      expect(up.idp.count('token', 'refresh_token')).toBe(1);
      expect(up.smtp.auths.slice(before).map((a) => a.accepted)).toEqual([false, true]);
      expect(await send(c, testMessage('after rejection'))).toBe(250);
    } finally {
      c.close();
    }
  });

  it('identity provider down: 454 4.7.0, and the stored refresh token is kept', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const { run, port } = await proxyWith({ accessToken: 'at_expired_expired_expired_s', expiresInMs: -1, refreshToken: rt });
    try {
      for (const mode of ['http500', 'drop'] as const) {
        up.idp.failMode = mode;
        const { c, lines } = await login(port);
        c.close();
        expect(lines).toEqual(['454 4.7.0 Identity provider unavailable, try again later']);
      }
    } finally {
      up.idp.failMode = 'none';
    }
    expect((await readStore(run.dir))?.refreshToken).toBe(rt);
    const { c, code } = await login(port);
    c.close();
    expect(code).toBe(235);
  });

  it('mail server down: 454 4.7.0 at AUTH, and the client may try again', async () => {
    const other = await startSmtpUpstreams();
    const { dir, configPath } = writeSmtpProxyConfig(other, { listeners: [{ tls: 'none' }] });
    const { run, ports } = await startSmtpProxy(configPath, dir, 1);
    runs.push(run);
    await other.smtp.close();
    try {
      const { c, lines } = await login(ports[0]!);
      expect(lines).toEqual(['454 4.7.0 Mail server unavailable, try again later']);
      expect((await c.authPlain(USER, LOCAL_PASSWORD)).code).toBe(454);
      c.close();
    } finally {
      await other.idp.close();
    }
  });

  it('a revoked grant: 535 5.7.8 with a text that says what to do', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const { run, port } = await proxyWith({ accessToken: 'at_expired_expired_expired_r', expiresInMs: -1, refreshToken: rt });
    up.idp.revoke(rt);
    const { c, code, lines } = await login(port);
    c.close();
    expect(code).toBe(535);
    expect(lines[0]).toMatch(/^535 5\.7\.8 Account needs authorization: .*put a new refresh_token/);
    await run.waitForEvent('token.needs_authorization');
  });

  it('a 4 kB access token is sent in the two-step form (RFC 4954 section 4: no initial response past 512 octets)', async () => {
    const before = up.smtp.commands.length;
    const { c, code } = await login(shared.port, BIG, BIG_PASSWORD);
    try {
      expect(code).toBe(235);
      expect(await send(c, testMessage('big token', BIG), BIG)).toBe(250);
    } finally {
      c.close();
    }
    const auth = up.smtp.commands.slice(before).filter((line) => line.startsWith('AUTH'));
    expect(auth).toEqual(['AUTH XOAUTH2']);
    expect(up.smtp.auths.at(-1)).toEqual({ method: 'XOAUTH2', username: BIG, accepted: true });
  });
});

describe('check', () => {
  it('logs in to the SMTP server per account (and sends nothing)', async () => {
    const { configPath } = writeSmtpProxyConfig(up, { listeners: [{ tls: 'none' }] });
    const before = { auths: up.smtp.auths.length, accepted: up.smtp.accepted };
    const result = await runCli(['check', '-c', configPath]);
    expect(result.stdout).toMatch(/account\s+flow\s+token\s+smtp/);
    for (const account of [USER, PRINTER, BIG]) expect(result.stdout).toMatch(new RegExp(`${account}\\s+\\S+\\s+ok\\s+ok`));
    expect(result.code).toBe(0);
    expect(up.smtp.auths.slice(before.auths).map((a) => a.accepted)).toEqual([true, true, true]);
    expect(up.smtp.accepted).toBe(before.accepted);
    expect(result.stdout + result.stderr).not.toMatch(TOKEN_PATTERN);
  });
});

describe('large messages stream', () => {
  it('a 30 MB message is delivered intact, with the proxy\'s peak RSS under 3x its idle RSS', { timeout: 120_000 }, async () => {
    const { run, port } = await proxyWith();
    const pid = run.child.pid!;
    const { c: warm } = await login(port);
    expect(await send(warm, testMessage('warm-up'))).toBe(250);
    warm.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = rssKb(pid);
    // 30 MB of base64 lines, some starting with a dot (dot-stuffing on the way in and out).
    const lines = (randomBytes(22 * 1024 * 1024).toString('base64').match(/.{1,76}/g) ?? []).map((line, i) => (i % 997 === 0 ? `.${line}` : line));
    const message = Buffer.from(`Subject: thirty megabytes\r\n\r\n${lines.join('\r\n')}\r\n`);
    expect(message.length).toBeGreaterThan(30 * 1000 * 1000);
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 20);
    try {
      const { c } = await login(port);
      expect(await send(c, message)).toBe(250);
      c.close();
    } finally {
      clearInterval(sampler);
    }
    const got = up.smtp.messages.find((m) => m.data.subarray(0, 30).includes('Subject: thirty megabytes'));
    expect(got?.data.length).toBe(message.length);
    expect(got?.data.equals(message)).toBe(true);
    console.info(`30 MB message: proxy RSS idle ${Math.round(idle / 1024)} MB, peak ${Math.round(peak / 1024)} MB (${(peak / idle).toFixed(2)}x)`);
    expect(peak).toBeLessThan(3 * idle);
  });
});
