import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoImapServer } from '../../src/demo/imap-server.js';
import type { MockIdp } from '../../src/demo/mock-idp.js';
import { startFaultSwitch, type FaultMode, type FaultSwitch } from '../fakes/fault-switch.js';
import { WireClient } from '../fakes/imap-wire-client.js';
import {
  LOCAL_PASSWORD, USER, readStore, seedStore, startProxy, startUpstreams, writeProxyConfig, type ProxyOptions, type ProxyRun, type Upstreams,
} from './harness.js';

/**
 * Faults of the identity provider and of the mail server, through the built proxy (issue 8,
 * point 4). A fault switch sits in front of each (test/fakes/fault-switch.ts). Every fault gives
 * the protocol's temporary error (or, mid-relay, a clean close), a log line that names the
 * cause, and leaves every token where it was: the stored refresh token is unchanged and still
 * accepted by the provider, and a fault of the mail server does not even cost a refresh.
 */

const EXPIRED = `at_expired_${'x'.repeat(24)}`;
let up: Upstreams;
let idpSwitch: FaultSwitch;
let mailSwitch: FaultSwitch;
let pop3Switch: FaultSwitch;
let refreshToken: string;

beforeAll(async () => {
  up = await startUpstreams({ rotateRefreshTokens: false }, 'implicit', { tls: 'implicit' });
  const untrusted = up.certs.untrustedCert;
  idpSwitch = await startFaultSwitch({ targetPort: Number(new URL(up.idp.tokenUrl).port) });
  mailSwitch = await startFaultSwitch({ targetPort: up.imap.port, untrusted });
  pop3Switch = await startFaultSwitch({ targetPort: up.pop3!.port, untrusted });
});

afterAll(async () => {
  for (const s of [idpSwitch, mailSwitch, pop3Switch]) await s.close();
  await up.close();
});

/** The proxy's config points at the switches instead of the real upstreams. */
async function proxyBehindSwitches(options: ProxyOptions): Promise<ProxyRun> {
  refreshToken = up.idp.issueRefreshToken(USER);
  const idp = { ...up.idp, tokenUrl: `http://127.0.0.1:${idpSwitch.port}/token` } as MockIdp;
  const switched: Upstreams = {
    ...up, idp,
    imap: { port: mailSwitch.port } as DemoImapServer,
    pop3: { port: pop3Switch.port, tls: up.pop3!.tls } as Upstreams['pop3'],
  };
  const { dir, configPath } = writeProxyConfig(switched, { refreshToken, providerExtra: '    token_timeout: 1\n', ...options });
  // An expired access token: every login needs the identity provider until one refresh succeeds.
  await seedStore(dir, {
    refreshToken, accessToken: EXPIRED, accessTokenExpiresAt: Date.now() - 60_000,
    seedDigest: createHash('sha256').update(refreshToken).digest('hex'),
  });
  return startProxy(configPath, dir);
}

async function imapLogin(run: ProxyRun, tag: string): Promise<{ reply: string; client: WireClient }> {
  const client = await WireClient.connect({ port: run.port });
  await client.readLine();
  const reply = (await client.command(tag, `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`)).at(-1) ?? '';
  return { reply, client };
}

async function pop3Login(run: ProxyRun): Promise<string> {
  const client = await WireClient.connect({ port: run.port });
  try {
    await client.readLine();
    client.send(`USER ${USER}\r\n`);
    await client.readLine();
    client.send(`PASS ${LOCAL_PASSWORD}\r\n`);
    return await client.readLine();
  } finally {
    client.close();
  }
}

/** The last log record of `event` logged after `since` records, once it has arrived. */
async function nextEvent(run: ProxyRun, event: string, since: number): Promise<Record<string, unknown>> {
  const all = await run.waitForEvents(event, since + 1);
  return all.at(-1) as Record<string, unknown>;
}

async function expectTokensKept(run: ProxyRun): Promise<void> {
  const stored = await readStore(run.dir);
  expect(stored?.refreshToken).toBe(refreshToken);
  expect(up.idp.isRefreshTokenActive(refreshToken)).toBe(true);
}

type IdpFault = { name: string; apply(): Promise<void>; cause: RegExp };
const IDP_FAULTS: IdpFault[] = [
  { name: 'refusing connections', apply: () => idpSwitch.setMode('refuse'), cause: /ECONNREFUSED|refused/i },
  { name: 'resetting the connection', apply: () => idpSwitch.setMode('reset'), cause: /ECONNRESET|socket hang up|reset/i },
  { name: 'timing out', apply: () => idpSwitch.setMode('hang'), cause: /did not answer within 1 s/ },
  { name: 'answering HTML', apply: async () => void (up.idp.failMode = 'html'), cause: /not a token response/ },
  { name: 'answering 500', apply: async () => void (up.idp.failMode = 'http500'), cause: /HTTP 500/ },
  { name: 'dropping mid-response', apply: () => idpSwitch.setMode('truncate'), cause: /truncated/ },
];

async function healIdp(): Promise<void> {
  up.idp.failMode = 'none';
  await idpSwitch.setMode('pass');
}

describe('IMAP: identity provider faults', () => {
  let run: ProxyRun;
  beforeAll(async () => {
    run = await proxyBehindSwitches({});
  });
  afterAll(async () => {
    await healIdp();
    await run.stop();
  });

  it.each(IDP_FAULTS.map((f) => [f.name, f] as const))('%s: NO [UNAVAILABLE], a log line naming the cause, every token kept', async (_name, fault) => {
    await fault.apply();
    const before = run.events('token.refresh').length;
    const { reply, client } = await imapLogin(run, 'i1');
    client.close();
    await healIdp();
    expect(reply).toBe('i1 NO [UNAVAILABLE] Identity provider unavailable, try again later');
    const logged = await nextEvent(run, 'token.refresh', before);
    expect(logged).toMatchObject({ outcome: 'idp_unavailable', account: USER });
    expect(String(logged.error)).toMatch(fault.cause);
    await expectTokensKept(run);
  });

  it('once the provider is back, the same refresh token logs the client in', async () => {
    const { reply, client } = await imapLogin(run, 'i2');
    client.close();
    expect(reply).toMatch(/^i2 OK \[CAPABILITY /);
    await expectTokensKept(run);
  });
});

describe('IMAP: mail server faults', () => {
  let run: ProxyRun;
  beforeAll(async () => {
    run = await proxyBehindSwitches({});
    const { reply, client } = await imapLogin(run, 'w1'); // a fresh access token in the store
    client.close();
    expect(reply).toMatch(/^w1 OK/);
  });
  afterAll(async () => {
    await mailSwitch.setMode('pass');
    await run.stop();
  });

  const FAULTS: [string, FaultMode, RegExp][] = [
    ['refusing connections', 'refuse', /connection refused/],
    ['resetting during TLS', 'reset', /reset|closed the connection during connect/i],
    ['sending a certificate nobody trusts', 'bad_cert', /certificate verification failed/],
  ];

  it.each(FAULTS)('%s: NO [UNAVAILABLE], a log line naming the cause, no token spent', async (_name, mode, cause) => {
    const stored = await readStore(run.dir);
    const refreshes = up.idp.count('token');
    await mailSwitch.setMode(mode);
    const before = run.events('login.fail').length;
    const { reply, client } = await imapLogin(run, 'm1');
    client.close();
    await mailSwitch.setMode('pass');
    expect(reply).toBe('m1 NO [UNAVAILABLE] Mail server unavailable, try again later');
    expect(String((await nextEvent(run, 'login.fail', before)).reason)).toMatch(cause);
    expect(await readStore(run.dir)).toEqual(stored);
    expect(up.idp.count('token')).toBe(refreshes);
  });

  it('closing mid-relay: the client sees a clean close, the session ends with server_closed, and the next login works', async () => {
    const { reply, client } = await imapLogin(run, 'r1');
    expect(reply).toMatch(/^r1 OK/);
    expect((await client.command('r2', 'SELECT INBOX')).at(-1)).toMatch(/^r2 OK/);
    const ends = run.events('session.end').length;
    mailSwitch.dropAll();
    for (let i = 0; i < 200 && !client.isClosed; i++) await new Promise((r) => setTimeout(r, 10));
    expect(client.isClosed).toBe(true);
    const end = await nextEvent(run, 'session.end', ends);
    expect(end).toMatchObject({ outcome: 'relayed', account: USER });
    expect(String(end.relayEnd)).toMatch(/^server_(closed|error)$/);
    const again = await imapLogin(run, 'r3');
    again.client.close();
    expect(again.reply).toMatch(/^r3 OK/);
  });
});

describe('POP3: the same faults give -ERR [SYS/TEMP]', () => {
  let run: ProxyRun;
  beforeAll(async () => {
    run = await proxyBehindSwitches({ protocol: 'pop3' });
  });
  afterAll(async () => {
    await healIdp();
    await pop3Switch.setMode('pass');
    await run.stop();
  });

  it('an identity provider that answers 500 or drops mid-response, then one that is back', async () => {
    for (const apply of [() => void (up.idp.failMode = 'http500'), () => idpSwitch.setMode('truncate')]) {
      await apply();
      expect(await pop3Login(run)).toBe('-ERR [SYS/TEMP] Identity provider unavailable, try again later');
      await healIdp();
      await expectTokensKept(run);
    }
    expect(await pop3Login(run)).toMatch(/^\+OK/);
  });

  it('a mail server that refuses, resets during TLS or shows a bad certificate', async () => {
    const stored = await readStore(run.dir);
    for (const mode of ['refuse', 'reset', 'bad_cert'] as const) {
      await pop3Switch.setMode(mode);
      expect(await pop3Login(run)).toBe('-ERR [SYS/TEMP] Mail server unavailable, try again later');
    }
    await pop3Switch.setMode('pass');
    expect(await readStore(run.dir)).toEqual(stored);
    expect(await pop3Login(run)).toMatch(/^\+OK/);
  });
});
