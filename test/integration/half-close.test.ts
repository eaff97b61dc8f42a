import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import {
  CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, startProxy, startUpstreams, writeProxyConfig,
  type ProxyOptions, type ProxyRun, type Upstreams,
} from './harness.js';
import { startSmtpProxy, startSmtpUpstreams, writeSmtpProxyConfig, type SmtpUpstreams } from './smtp-harness.js';

/**
 * Clients that half-close: they send their commands and their FIN at once and then only read,
 * as `printf '...' | nc -N host port` does. A FIN ends the client's sending, not its reading
 * (RFC 9293 section 3.6), so every command sent before it is answered in order (RFC 3501
 * section 2.2.2, RFC 1939 section 3) and only then is the connection closed; never a silent
 * disconnect (SPEC section 5). The FIN goes out with the last command, in the same turn: the
 * proxy's login takes longer than that, which is what lost the replies.
 */

let up: Upstreams;
const runs: ProxyRun[] = [];
let imap: ProxyRun;

async function proxy(options: ProxyOptions = {}): Promise<ProxyRun> {
  const { dir, configPath } = writeProxyConfig(up, options);
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

/** An IMAP quoted string (RFC 3501 section 4.3): the local password has quotes and a backslash. */
function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}

/** Connects, reads the greeting, sends `text` and its FIN together, and returns every line up to the close. */
async function sendAndHalfClose(port: number, text: string, tlsCa?: string): Promise<{ greeting: string; lines: string[] }> {
  const c = await WireClient.connect({ port, tlsCa });
  const greeting = await c.readLine();
  c.send(text);
  c.endInput();
  return { greeting, lines: await c.readUntilClosed() };
}

/** The `count`th session.end line of `run`, once it is logged. */
async function nthSessionEnd(run: ProxyRun, count: number): Promise<Record<string, unknown>> {
  const ends = await run.waitForEvents('session.end', count);
  return ends[count - 1]!;
}

beforeAll(async () => {
  up = await startUpstreams({}, 'implicit', { tls: 'implicit' });
  // Every failed login is answered after 0.3 s, as the throttle answers an address that failed
  // before (SPEC section 4): the client's FIN has long arrived by then.
  imap = await proxy({ extraYaml: 'login_throttle: { free_failures: 0, delay: 0.3, max_delay: 0.3, lockout_after: 100 }' });
});

afterAll(async () => {
  for (const run of runs) await run.stop();
  await up.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('a client that half-closes right after its commands', () => {
  it('IMAP: LOGIN, NOOP and LOGOUT then FIN get the login OK, the server\'s replies, then the close', async () => {
    const before = imap.events('session.end').length;
    const { lines } = await sendAndHalfClose(imap.port, `a LOGIN ${quoted(USER)} ${quoted(LOCAL_PASSWORD)}\r\nb NOOP\r\nc LOGOUT\r\n`);
    expect(lines[0]).toMatch(/^a OK \[CAPABILITY .*X-DEMO-POSTLOGIN.*\] LOGIN completed$/);
    // NOOP and LOGOUT went through the relay: the server answered them, after the login.
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^b OK /), expect.stringMatching(/^\* BYE /), expect.stringMatching(/^c OK /)]);
    expect(await nthSessionEnd(imap, before + 1)).toMatchObject({ account: USER, outcome: 'relayed' });
  });

  it('IMAP: LOGIN then FIN and nothing else: the OK, then the relay ends both sides', async () => {
    const before = imap.events('session.end').length;
    const started = Date.now();
    const { lines } = await sendAndHalfClose(imap.port, `a LOGIN ${quoted(USER)} ${quoted(LOCAL_PASSWORD)}\r\n`);
    expect(lines).toEqual([expect.stringMatching(/^a OK \[CAPABILITY .*\] LOGIN completed$/)]);
    // The server was given the FIN too and closed: no wait for the relay's idle timeout.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await nthSessionEnd(imap, before + 1)).toMatchObject({ account: USER, outcome: 'relayed' });
  });

  it('IMAP: a wrong password then FIN gets the NO, then the close', async () => {
    const before = imap.events('session.end').length;
    const { lines } = await sendAndHalfClose(imap.port, `a LOGIN ${quoted(USER)} "not the password"\r\nb NOOP\r\n`);
    // The NOOP after the failed login is answered locally: the session was still before login.
    expect(lines).toEqual([expect.stringMatching(/^a NO \[AUTHENTICATIONFAILED\] /), expect.stringMatching(/^b OK /)]);
    expect((await nthSessionEnd(imap, before + 1)).outcome).not.toBe('relayed');
  });

  it('IMAP over implicit TLS: close_notify and FIN after LOGIN, NOOP and LOGOUT still get every reply', async () => {
    const tls = await proxy({ clientTls: 'implicit' });
    const { greeting, lines } = await sendAndHalfClose(tls.port, `a LOGIN ${quoted(USER)} ${quoted(LOCAL_PASSWORD)}\r\nb NOOP\r\nc LOGOUT\r\n`, up.certs.caPem);
    expect(greeting).toMatch(/^\* OK /);
    expect(lines).toEqual([
      expect.stringMatching(/^a OK \[CAPABILITY .*\] LOGIN completed$/),
      expect.stringMatching(/^b OK /), expect.stringMatching(/^\* BYE /), expect.stringMatching(/^c OK /),
    ]);
  });

  it('POP3: USER, PASS, STAT and QUIT then FIN get every reply, the server\'s after the login', async () => {
    const pop3 = await proxy({ protocol: 'pop3' });
    const { greeting, lines } = await sendAndHalfClose(pop3.port, `USER ${USER}\r\nPASS ${LOCAL_PASSWORD}\r\nSTAT\r\nQUIT\r\n`);
    expect(greeting).toMatch(/^\+OK /);
    expect(lines).toEqual([
      expect.stringMatching(/^\+OK /), // USER, answered by the proxy
      expect.stringMatching(/^\+OK /), // the server's own reply to the login
      expect.stringMatching(/^\+OK \d+ \d+$/), // STAT (RFC 1939 section 5)
      expect.stringMatching(/^\+OK /), // QUIT
    ]);
    expect(await nthSessionEnd(pop3, 1)).toMatchObject({ account: USER, outcome: 'relayed' });
  });
});

describe('a client that half-closes while idle before login', () => {
  it('is closed at once, long before the idle timeout, and its session ends', async () => {
    const before = imap.events('session.end').length;
    const c = await WireClient.connect({ port: imap.port });
    await c.readLine();
    const started = Date.now();
    c.endInput();
    expect(await c.readUntilClosed()).toEqual([]);
    // The listener's idle_timeout is 2 s: this close came from the FIN, not from the timer.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await nthSessionEnd(imap, before + 1)).toMatchObject({ outcome: 'client_closed' });
  });
});

describe('an SMTP client that half-closes', () => {
  let smtpUp: SmtpUpstreams;
  let smtp: ProxyRun;
  let port: number;
  beforeAll(async () => {
    smtpUp = await startSmtpUpstreams();
    const config = writeSmtpProxyConfig(smtpUp, { listeners: [{ tls: 'none' }] });
    const started = await startSmtpProxy(config.configPath, config.dir, 1);
    smtp = started.run;
    port = started.ports[0]!;
  });
  afterAll(async () => {
    await smtp?.stop();
    await smtpUp?.close();
  });

  /** Sends `lines` and the FIN at once after the greeting; every reply code up to the close, and how long that took. */
  async function pipelineAndHalfClose(lines: string[]): Promise<{ codes: number[]; ms: number }> {
    const c = await SmtpWireClient.open({ port });
    const started = Date.now();
    c.send(lines.map((l) => `${l}\r\n`).join(''));
    c.endInput();
    const codes: number[] = [];
    for (;;) {
      try {
        codes.push((await c.readReply()).code);
      } catch {
        if (c.isClosed) return { codes, ms: Date.now() - started };
        throw new Error(`no close after ${JSON.stringify(codes)}`);
      }
    }
  }

  it('AUTH then FIN: the session ends at once, not half-open until the idle timeout', async () => {
    const before = smtp.events('session.end').length;
    const auth = Buffer.from(`\0${USER}\0${LOCAL_PASSWORD}`).toString('base64');
    const { codes, ms } = await pipelineAndHalfClose(['EHLO client.example', `AUTH PLAIN ${auth}`]);
    // EHLO is answered as it is read, before the FIN. The reply to AUTH, which waits for the
    // upstream login, is lost: smtp-server cannot write to a half-closed socket (server.ts).
    expect(codes[0]).toBe(250);
    // The listener's idle_timeout is 20 s.
    expect(ms).toBeLessThan(3000);
    await smtp.waitForEvents('session.end', before + 1);
  });

  it('FIN while idle before login: closed at once, and the session ends', async () => {
    const before = smtp.events('session.end').length;
    const { codes, ms } = await pipelineAndHalfClose([]);
    expect(codes).toEqual([]);
    expect(ms).toBeLessThan(1000);
    await smtp.waitForEvents('session.end', before + 1);
  });
});
