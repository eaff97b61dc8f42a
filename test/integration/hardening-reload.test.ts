import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { LOCAL_PASSWORD, USER, accountYaml, corpProviderYaml, startProxy, startUpstreams, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Reload and shutdown of the built proxy (issue 8, point 6). SIGHUP applies a changed config
 * (an account added, one removed, a listener changed, one added) while logged-in sessions keep
 * relaying, on a kept listener and on the changed one alike. SIGTERM stops accepting, says
 * goodbye at once to every session not logged in yet (IMAP, POP3, SMTP), lets a relayed session
 * finish, cuts off one that does not within `shutdown_timeout`, and exits 0.
 */

const BOB = 'bob@example.com';
const BOB_PASSWORD = 'bob-local-password';
const CAROL = 'carol@example.com';
const CAROL_PASSWORD = 'carol-local-password';

let up: Upstreams;
let dir: string;
let configPath: string;
let run: ProxyRun;

interface Layout {
  accounts: string[];
  pop3IdleTimeout: number;
  extraImap: boolean;
}

const ACCOUNT_LINES = new Map<string, string>();

function writeConfig(layout: Layout): void {
  writeFileSync(configPath, `
listeners:
  - { protocol: imap, listen: 127.0.0.1:0, idle_timeout: 30 }
  - { protocol: pop3, listen: 127.0.0.1:0, idle_timeout: ${layout.pop3IdleTimeout} }
  - { protocol: smtp, listen: 127.0.0.1:0 }
${layout.extraImap ? '  - { protocol: imap, listen: 127.0.0.1:0, max_connections: 5 }\n' : ''}${corpProviderYaml(up)}accounts:
${layout.accounts.map((a) => ACCOUNT_LINES.get(a)).join('')}token_store: { path: ./data/tokens.enc, key_file: ./data/tokens.key }
admin: { listen: 127.0.0.1:0 }
shutdown_timeout: 2
log: { level: debug, format: json }
`);
}

beforeAll(async () => {
  up = await startUpstreams({}, 'implicit', { tls: 'implicit' });
  dir = mkdtempSync(join(tmpdir(), 'omp-reload-'));
  configPath = join(dir, 'config.yaml');
  ACCOUNT_LINES.set(USER, accountYaml(up, USER, LOCAL_PASSWORD));
  ACCOUNT_LINES.set(BOB, accountYaml(up, BOB, BOB_PASSWORD));
  ACCOUNT_LINES.set(CAROL, accountYaml(up, CAROL, CAROL_PASSWORD));
  writeConfig({ accounts: [USER, CAROL], pop3IdleTimeout: 30, extraImap: false });
  run = await startProxy(configPath, dir);
  await run.waitForEvents('listener.start', 3);
});

afterAll(async () => {
  await run.stop();
  await up.close();
});

/** Ports of the listeners started so far, by protocol, newest last. */
function ports(protocol: string): number[] {
  return run.events('listener.start').filter((e) => e.protocol === protocol).map((e) => Number(e.port));
}

async function imapLogin(port: number, user: string, password: string, tag = 'l'): Promise<{ reply: string; client: WireClient }> {
  const client = await WireClient.connect({ port });
  await client.readLine();
  const reply = (await client.command(tag, `LOGIN ${user} {${Buffer.byteLength(password)}+}\r\n${password}`)).at(-1) ?? '';
  return { reply, client };
}

async function pop3Login(port: number): Promise<WireClient> {
  const client = await WireClient.connect({ port });
  expect(await client.readLine()).toMatch(/^\+OK/);
  client.send(`USER ${USER}\r\nPASS ${LOCAL_PASSWORD}\r\n`);
  expect(await client.readLine()).toMatch(/^\+OK/);
  expect(await client.readLine()).toMatch(/^\+OK/);
  return client;
}

async function refused(port: number): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port });
  const [outcome] = await Promise.race([once(socket, 'error'), once(socket, 'connect').then(() => ['connected'])]);
  socket.destroy();
  return (outcome as NodeJS.ErrnoException | string) !== 'connected';
}

describe('SIGHUP reload', () => {
  let relayed: WireClient;
  let relayedPop3: WireClient;
  let oldPop3: number;

  it('applies a new account, a removed account, a changed and a new listener, and drops no relayed session', async () => {
    const [imap] = ports('imap') as [number];
    [oldPop3] = ports('pop3') as [number];
    const alice = await imapLogin(imap, USER, LOCAL_PASSWORD, 'a1');
    expect(alice.reply).toMatch(/^a1 OK/);
    relayed = alice.client;
    relayedPop3 = await pop3Login(oldPop3);
    const refreshes = up.idp.count('token');
    expect((await imapLogin(imap, BOB, BOB_PASSWORD, 'b0')).reply).toMatch(/^b0 NO \[AUTHENTICATIONFAILED\]/);

    writeConfig({ accounts: [USER, BOB], pop3IdleTimeout: 20, extraImap: true });
    run.child.kill('SIGHUP');
    const reload = await run.waitForEvent('config.reload');
    await run.waitForEvents('listener.start', 5);
    expect(reload.accounts).toEqual({ added: [BOB], removed: [CAROL], changed: [] });
    expect(reload.listeners).toMatchObject({ kept: 2, started: ['pop3 127.0.0.1:0', 'imap 127.0.0.1:0'], stopped: ['pop3 127.0.0.1:0'], failed: [] });

    // The relayed sessions, on the kept IMAP listener and on the changed POP3 one, go on.
    expect((await relayed.command('a2', 'SELECT INBOX')).at(-1)).toMatch(/^a2 OK/);
    relayedPop3.send('STAT\r\n');
    expect(await relayedPop3.readLine()).toMatch(/^\+OK \d+ \d+/);
    // Bob is in, Carol is out, and Alice's cached token was kept (no refresh).
    const bob = await imapLogin(imap, BOB, BOB_PASSWORD, 'b1');
    bob.client.close();
    expect(bob.reply).toMatch(/^b1 OK/);
    expect((await imapLogin(imap, CAROL, CAROL_PASSWORD, 'c1')).reply).toMatch(/^c1 NO \[AUTHENTICATIONFAILED\]/);
    const alice2 = await imapLogin(imap, USER, LOCAL_PASSWORD, 'a3');
    alice2.client.close();
    expect(alice2.reply).toMatch(/^a3 OK/);
    expect(up.idp.count('token')).toBe(refreshes + 1); // Bob's first token only
    // The changed POP3 listener moved to its new port; the new IMAP listener takes logins.
    expect(await refused(oldPop3)).toBe(true);
    const newPop3 = ports('pop3').at(-1)!;
    (await pop3Login(newPop3)).close();
    const extra = await imapLogin(ports('imap').at(-1)!, USER, LOCAL_PASSWORD, 'x1');
    extra.client.close();
    expect(extra.reply).toMatch(/^x1 OK/);
    // The status page lists the accounts of the new config.
    const adminPort = Number((await run.waitForEvent('admin.start')).port);
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/api/status`)).json()) as { accounts: Array<{ account: string; signInMethods: string[] }> };
    expect(status.accounts.map((a) => a.account).sort()).toEqual([USER, BOB].sort());
    // ...with a Sign in button for the account that came with the reload too.
    expect(status.accounts.find((a) => a.account === BOB)?.signInMethods).toContain('browser');
  });

  it('keeps the running config when the new one has a mistake', async () => {
    writeFileSync(configPath, 'listeners: [ { protocol: imap, listen: nowhere } ]\n');
    run.child.kill('SIGHUP');
    const failed = await run.waitForEvent('config.reload_failed');
    expect(String(failed.err)).toMatch(/listen/);
    expect((await relayed.command('a4', 'NOOP')).at(-1)).toMatch(/^a4 OK/);
    const bob = await imapLogin(ports('imap')[0]!, BOB, BOB_PASSWORD, 'b2');
    bob.client.close();
    expect(bob.reply).toMatch(/^b2 OK/);
  });

  it('SIGTERM: goodbye to every session not logged in, the relayed ones finish or get theirs at the deadline, exit 0', async () => {
    const imap = ports('imap')[0]!;
    const staying = await imapLogin(imap, USER, LOCAL_PASSWORD, 'a7');
    expect(staying.reply).toMatch(/^a7 OK/);
    const waitingImap = await WireClient.connect({ port: imap });
    expect(await waitingImap.readLine()).toMatch(/^\* OK/);
    const waitingPop3 = await WireClient.connect({ port: ports('pop3').at(-1)! });
    expect(await waitingPop3.readLine()).toMatch(/^\+OK/);
    const waitingSmtp = await WireClient.connect({ port: ports('smtp')[0]! });
    expect(await waitingSmtp.readLine()).toMatch(/^220 /);
    const started = Date.now();
    run.child.kill('SIGTERM');
    expect(await waitingImap.readLine()).toMatch(/^\* BYE /);
    expect(await waitingPop3.readLine()).toMatch(/^-ERR \[SYS\/TEMP\] /);
    expect(await waitingSmtp.readLine()).toMatch(/^421 4\.3\.2 /);
    // New connections are refused at once.
    expect(await refused(imap)).toBe(true);
    // A relayed session still works during the grace period and ends as it likes...
    expect((await relayed.command('a5', 'NOOP')).at(-1)).toMatch(/^a5 OK/);
    expect((await relayed.command('a6', 'LOGOUT')).at(-1)).toMatch(/^a6 OK/);
    // ...and those that do not end hear goodbye in their protocol at the deadline (2 s) and are
    // closed, on the kept IMAP listener and on the POP3 one the reload left draining; then exit 0.
    const [code] = (await once(run.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(await staying.client.readLine()).toBe('* BYE Server shutting down');
    expect(await relayedPop3.readLine()).toBe('-ERR [SYS/TEMP] Server shutting down');
    for (let i = 0; i < 100 && !(relayedPop3.isClosed && staying.client.isClosed); i++) await new Promise((r) => setTimeout(r, 20));
    expect(relayedPop3.isClosed).toBe(true);
    expect(staying.client.isClosed).toBe(true);
    expect(run.events('session.end').filter((e) => e.relayEnd === 'shutdown')).toHaveLength(2);
    expect(run.events('proxy.stop')).toHaveLength(1);
  });
});
