import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import { LOCAL_PASSWORD, TOKEN_PATTERN, USER, type ProxyRun } from './harness.js';
import {
  PRINTER, PRINTER_PASSWORD, startSmtpProxy, startSmtpUpstreams, testMessage, writeSmtpProxyConfig, type SmtpUpstreams,
} from './smtp-harness.js';

/** Per-listener limits (message size, recipients, idle and login time) and shutdown, through the built proxy. */

let up: SmtpUpstreams;
let proxy: ProxyRun;
let limited: number;
let impatient: number;
/** max_message_size 2000, where the printer account's From is rewritten. */
let rewriting: number;

beforeAll(async () => {
  up = await startSmtpUpstreams();
  const { dir, configPath } = writeSmtpProxyConfig(up, {
    listeners: [
      { extra: 'max_message_size: 4000\n    max_recipients: 2' },
      { idleTimeout: 1, loginTimeout: 2 },
      { extra: 'max_message_size: 2000' },
    ],
  });
  const started = await startSmtpProxy(configPath, dir, 3);
  proxy = started.run;
  [limited = 0, impatient = 0, rewriting = 0] = started.ports;
});

afterAll(async () => {
  await proxy?.stop();
  await up?.close();
  expect(proxy.logs.join('\n')).not.toMatch(TOKEN_PATTERN);
  expect(proxy.logs.join('\n')).not.toContain(LOCAL_PASSWORD);
});

async function loggedIn(port: number, user = USER, password = LOCAL_PASSWORD): Promise<SmtpWireClient> {
  const c = await SmtpWireClient.open({ port });
  await c.command('EHLO client.test');
  expect((await c.authPlain(user, password)).code).toBe(235);
  return c;
}

/** A message of exactly `size` bytes whose From the printer account's rewrite makes longer. */
function sizedMessage(subject: string, size: number): Buffer {
  const head = `From: a@b\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n\r\n`;
  return Buffer.from(`${head}${'x'.repeat(size - head.length - 2)}\r\n`);
}

describe('per-listener limits', () => {
  it('announces SIZE, refuses a declared size over it, and a third recipient', async () => {
    const c = await SmtpWireClient.open({ port: limited });
    try {
      expect((await c.command('EHLO client.test')).lines.at(-1)).toBe('250 SIZE 4000');
      await c.authPlain(USER, LOCAL_PASSWORD);
      expect((await c.command(`MAIL FROM:<${USER}> SIZE=5000`)).code).toBe(552);
      expect((await c.command(`MAIL FROM:<${USER}> SIZE=1000`)).code).toBe(250);
      expect((await c.command('RCPT TO:<one@example.org>')).code).toBe(250);
      expect((await c.command('RCPT TO:<two@example.org>')).code).toBe(250);
      expect((await c.command('RCPT TO:<three@example.org>')).code).toBe(452);
    } finally {
      c.close();
    }
  });

  it('a message over max_message_size is refused with 552 5.3.4, never delivered, and the session goes on', async () => {
    const c = await loggedIn(limited);
    const before = up.smtp.accepted;
    try {
      await c.command(`MAIL FROM:<${USER}>`);
      await c.command('RCPT TO:<bob@example.org>');
      const big = Buffer.concat([testMessage('too big'), Buffer.from('z'.repeat(5000))]);
      expect((await c.data(big)).end).toEqual({ code: 552, lines: ['552 5.3.4 Message exceeds the maximum size of 4000 bytes'] });
      expect(up.smtp.accepted).toBe(before);
      // The upstream connection was dropped to abort that DATA; the next transaction logs in anew.
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
      expect((await c.command('RCPT TO:<bob@example.org>')).code).toBe(250);
      expect((await c.data(testMessage('small enough'))).end.code).toBe(250);
      expect(up.smtp.accepted).toBe(before + 1);
    } finally {
      c.close();
    }
  });

  it('the limit counts the message as the client sent it, not as the From rewrite lengthened it (RFC 1870)', async () => {
    const c = await loggedIn(rewriting, PRINTER, PRINTER_PASSWORD);
    try {
      expect((await c.command(`MAIL FROM:<a@b> SIZE=1995`)).code).toBe(250);
      expect((await c.command('RCPT TO:<bob@example.org>')).code).toBe(250);
      const fits = sizedMessage('just fits', 1995);
      expect(fits.length).toBe(1995);
      expect((await c.data(fits)).end.code).toBe(250);
      const got = up.smtp.messages.find((m) => m.data.includes('Subject: just fits'));
      expect(got?.data.toString('latin1')).toBe(fits.toString('latin1').replace('From: a@b', `From: <${PRINTER}>`));
      expect(got?.data.length).toBeGreaterThan(2000);
      await c.command('MAIL FROM:<a@b>');
      await c.command('RCPT TO:<bob@example.org>');
      expect((await c.data(sizedMessage('one byte over', 2001))).end.code).toBe(552);
    } finally {
      c.close();
    }
    expect(up.smtp.messages.some((m) => m.data.includes('Subject: one byte over'))).toBe(false);
  });

  it('a client that hangs up during DATA is logged at info as its own doing, and nothing is delivered', async () => {
    const c = await loggedIn(limited);
    await c.command(`MAIL FROM:<${USER}>`);
    await c.command('RCPT TO:<bob@example.org>');
    expect((await c.command('DATA')).code).toBe(354);
    c.send('From: a@b\r\nSubject: cut off\r\n\r\nhalf a messa');
    await new Promise((resolve) => setTimeout(resolve, 200));
    c.close();
    const gone = await proxy.waitForEvent('smtp.client_closed');
    expect(gone).toMatchObject({ level: 30, step: 'data' });
    expect(await waitForSessionEnd(String(gone.session))).toMatchObject({ outcome: 'client_closed_in_data', messages: 0 });
    expect(proxy.events('session.error')).toEqual([]);
    expect(up.smtp.messages.some((m) => m.data.includes('Subject: cut off'))).toBe(false);
  });

  it('idle_timeout closes a silent session with 421', async () => {
    const c = await SmtpWireClient.open({ port: impatient });
    await c.command('EHLO client.test');
    const reply = await c.readReply(5000);
    expect(reply.code).toBe(421);
    c.close();
  });

  it('login_timeout closes a session that keeps talking without logging in: 421 4.4.2', async () => {
    const c = await SmtpWireClient.open({ port: impatient });
    const started = Date.now();
    try {
      await c.command('EHLO client.test');
      for (;;) {
        const reply = await c.command('NOOP');
        if (reply.code !== 250) {
          expect(reply).toEqual({ code: 421, lines: ['421 4.4.2 No login within 2 s, closing connection'] });
          break;
        }
        expect(Date.now() - started).toBeLessThan(6000);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    } finally {
      c.close();
    }
  });
});

async function waitForSessionEnd(session: string): Promise<Record<string, unknown> | undefined> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const end = proxy.events('session.end').find((e) => e.session === session);
    if (end || Date.now() > deadline) return end;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('shutdown', () => {
  it('SIGTERM: an idle session hears 421 4.3.2 at once; one in a transaction finishes its message first', async () => {
    const idle = await loggedIn(limited);
    const busy = await loggedIn(limited);
    expect((await busy.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
    expect((await busy.command('RCPT TO:<bob@example.org>')).code).toBe(250);
    const exited = once(proxy.child, 'exit');
    proxy.child.kill('SIGTERM');
    expect(await idle.readReply()).toEqual({ code: 421, lines: ['421 4.3.2 Service shutting down, try again later'] });
    expect((await busy.data(testMessage('during shutdown'))).end.code).toBe(250);
    expect(await busy.readReply()).toEqual({ code: 421, lines: ['421 4.3.2 Service shutting down, try again later'] });
    expect(up.smtp.messages.some((m) => m.data.includes('Subject: during shutdown'))).toBe(true);
    idle.close();
    busy.close();
    await exited;
  });
});
