import { execFile } from 'node:child_process';
import { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { buildMessage, seedMailbox, type DemoImapServer } from '../../src/demo/imap-server.js';
import { getTestCertificates } from '../fakes/certs.js';
import { DEMO_TOKEN, DEMO_USER, GMAIL_ERROR, useDemoImap, waitFor } from '../fakes/demo-imap-harness.js';

/** The demo IMAP server against real clients: imapflow, python3 imaplib and curl. */

const certs = getTestCertificates();
const demo = useDemoImap();

function imapflow(server: DemoImapServer, extra: Partial<ConstructorParameters<typeof ImapFlow>[0]> = {}): ImapFlow {
  const client = new ImapFlow({
    host: 'localhost',
    port: server.port,
    secure: true,
    auth: { user: DEMO_USER, accessToken: DEMO_TOKEN },
    tls: { ca: [certs.caPem] },
    logger: false,
    ...extra,
  });
  client.on('error', () => undefined);
  demo.track({ close: () => client.close() });
  return client;
}

/** Runs a program and resolves with its stdout (latin1, so bytes survive). */
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('demo IMAP server with imapflow', () => {
  it('logs in with XOAUTH2 and fetches messages byte-identically, a 10 MB one included', async () => {
    const server = await demo.start({ mechanisms: ['XOAUTH2'] });
    const small = buildMessage({ subject: 'small one' });
    const big = buildMessage({ subject: 'big one', minBytes: 10 * 1024 * 1024 });
    const [first, second] = seedMailbox(server, DEMO_USER, [small, big]);
    const client = imapflow(server);
    await client.connect();
    expect(server.stats.lastMechanism).toBe('XOAUTH2');
    expect(server.stats.authentications).toEqual([{ mechanism: 'XOAUTH2', user: DEMO_USER, ok: true, initialResponse: true }]);
    expect(client.capabilities.has('X-DEMO-POSTLOGIN')).toBe(true);
    const lock = await client.getMailboxLock('INBOX');
    try {
      const one = await client.fetchOne(String(first?.uid), { source: true, envelope: true }, { uid: true });
      const two = await client.fetchOne(String(second?.uid), { source: true, size: true }, { uid: true });
      expect(one && one.source?.equals(small)).toBe(true);
      expect(one && one.envelope?.subject).toBe('small one');
      expect(two && two.size).toBe(big.length);
      expect(two && two.source?.equals(big)).toBe(true);
    } finally {
      lock.release();
    }
    await client.logout();
    expect(server.stats.successfulLogins).toBe(1);
    expect(server.stats.lastUser).toBe(DEMO_USER);
  });

  it('prefers OAUTHBEARER when offered and supports the usual mailbox commands', async () => {
    const server = await demo.start();
    seedMailbox(server, DEMO_USER, [{ subject: 'a' }, { subject: 'b' }, { subject: 'c' }]);
    const client = imapflow(server);
    await client.connect();
    expect(server.stats.lastMechanism).toBe('OAUTHBEARER');
    expect((await client.list()).map((box) => box.path)).toEqual(['INBOX']);
    const status = await client.status('INBOX', { messages: true, unseen: true, uidNext: true });
    expect(status && status.messages).toBe(3);
    const appended = await client.append('INBOX', buildMessage({ subject: 'd' }), ['\\Flagged']);
    expect(appended).toBeTruthy();
    const lock = await client.getMailboxLock('INBOX');
    try {
      const all = [];
      for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true, headers: ['subject'] })) {
        all.push(m);
      }
      expect(all.map((m) => m.envelope?.subject)).toEqual(['a', 'b', 'c', 'd']);
      expect(all[3]?.flags?.has('\\Flagged')).toBe(true);
      expect(all[0]?.headers?.toString()).toBe('Subject: a\r\n\r\n');
      expect(all[0]?.bodyStructure?.type).toBe('text/plain');
      await client.messageFlagsAdd('2', ['\\Seen']);
      expect(await client.search({ seen: false })).toEqual([1, 3, 4]);
      await client.messageDelete('1:2');
      expect(await client.search({ all: true }, { uid: true })).toEqual([3, 4]);
    } finally {
      lock.release();
    }
    await client.logout();
  });

  it('reports a refused token as an authentication failure carrying the Gmail-style error', async () => {
    const server = await demo.start({ validateToken: () => false });
    const client = imapflow(server);
    const failure = await client.connect().then(() => undefined, (err: unknown) => err as { authenticationFailed?: boolean; oauthError?: unknown });
    expect(failure?.authenticationFailed).toBe(true);
    expect(failure?.oauthError).toEqual(GMAIL_ERROR);
    expect(server.stats.failedLogins).toBe(1);
    expect(server.stats.successfulLogins).toBe(0);
  });

  it('upgrades with STARTTLS and logs in', async () => {
    const server = await demo.start({ tls: 'starttls' });
    seedMailbox(server, DEMO_USER, [{ subject: 'over starttls' }]);
    const client = imapflow(server, { secure: false, doSTARTTLS: true });
    await client.connect();
    const commands = server.stats.commands;
    // RFC 3501 6.2.1: capabilities are asked again after TLS, and authentication comes after both.
    expect(commands.indexOf('STARTTLS')).toBeLessThan(commands.lastIndexOf('CAPABILITY'));
    expect(commands.lastIndexOf('CAPABILITY')).toBeLessThan(commands.indexOf('AUTHENTICATE'));
    expect(server.stats.successfulLogins).toBe(1);
    const lock = await client.getMailboxLock('INBOX');
    const message = await client.fetchOne('1', { envelope: true });
    lock.release();
    expect(message && message.envelope?.subject).toBe('over starttls');
    await client.logout();
  });

  it('sends EXISTS to an idling client when mail is delivered', async () => {
    const server = await demo.start();
    seedMailbox(server, DEMO_USER, [{ subject: 'first' }]);
    const client = imapflow(server);
    await client.connect();
    await client.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => client.on('exists', (event: { count: number }) => resolve(event.count)));
    void client.idle().catch(() => undefined);
    await waitFor(() => server.stats.commands.includes('IDLE'));
    server.deliver(DEMO_USER, buildMessage({ subject: 'second' }));
    expect(await exists).toBe(2);
    await client.logout();
  });
});

describe('demo IMAP server with other clients', () => {
  it('serves python3 imaplib over TLS and STARTTLS', async () => {
    for (const mode of ['implicit', 'starttls'] as const) {
      const server = await demo.start({ tls: mode });
      const messages = seedMailbox(server, DEMO_USER, [{ subject: 'py one' }, { subject: 'py two', minBytes: 200_000 }]);
      const out = JSON.parse(await run('python3', ['-c', PYTHON_CLIENT, String(server.port), certs.caFile, DEMO_USER, DEMO_TOKEN, mode])) as Record<string, unknown>;
      expect(out.auth).toBe('OK');
      expect(out.list).toEqual(['(\\HasNoChildren) "/" INBOX']);
      expect(out.search).toBe('1 2');
      expect(out.body).toBe(messages[1]?.raw.toString('latin1'));
      expect(server.stats.lastMechanism).toBe('XOAUTH2');
    }
  });

  it('serves curl with OAUTHBEARER over TLS and XOAUTH2 over STARTTLS', async () => {
    const common = ['--silent', '--show-error', '--cacert', certs.caFile, '--user', `${DEMO_USER}:`, '--oauth2-bearer', DEMO_TOKEN];
    const tls = await demo.start();
    const [message] = seedMailbox(tls, DEMO_USER, [{ subject: 'for curl' }]);
    expect(await run('curl', [...common, `imaps://localhost:${tls.port}/INBOX;UID=1`])).toBe(message?.raw.toString('latin1'));
    expect(await run('curl', [...common, `imaps://localhost:${tls.port}/`])).toBe('* LIST (\\HasNoChildren) "/" INBOX\r\n');
    expect(tls.stats.lastMechanism).toBe('OAUTHBEARER');
    // curl 7.88 picks OAUTHBEARER whenever offered, so XOAUTH2 is tested on a server offering only it.
    const starttls = await demo.start({ tls: 'starttls', mechanisms: ['XOAUTH2'] });
    const [other] = seedMailbox(starttls, DEMO_USER, [{ subject: 'for curl, again' }]);
    expect(await run('curl', [...common, '--ssl-reqd', `imap://localhost:${starttls.port}/INBOX;MAILINDEX=1`])).toBe(other?.raw.toString('latin1'));
    expect(starttls.stats.lastMechanism).toBe('XOAUTH2');
  });
});

/** python3 imaplib client: argv port cafile user token mode; prints one JSON object. */
const PYTHON_CLIENT = `
import imaplib, json, ssl, sys
port, cafile, user, token, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
if mode == 'implicit':
    imap = imaplib.IMAP4_SSL('localhost', port, ssl_context=ctx)
else:
    imap = imaplib.IMAP4('localhost', port)
    imap.starttls(ssl_context=ctx)
auth = 'user=%s\\x01auth=Bearer %s\\x01\\x01' % (user, token)
typ, _ = imap.authenticate('XOAUTH2', lambda challenge: auth.encode())
out = {'auth': typ}
typ, boxes = imap.list()
out['list'] = [b.decode() for b in boxes]
imap.select('INBOX')
typ, data = imap.search(None, 'ALL')
out['search'] = data[0].decode()
typ, data = imap.uid('FETCH', '2', '(BODY.PEEK[])')
out['body'] = data[0][1].decode('latin1')
imap.logout()
print(json.dumps(out))
`;
