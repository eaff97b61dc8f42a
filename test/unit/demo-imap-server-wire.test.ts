import { TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { buildMessage, seedMailbox } from '../../src/demo/imap-server.js';
import { getTestCertificates } from '../fakes/certs.js';
import { DEMO_TOKEN, DEMO_USER, GMAIL_ERROR, useDemoImap, waitFor } from '../fakes/demo-imap-harness.js';
import { oauthBearer, WireClient, xoauth2 } from '../fakes/imap-wire-client.js';

/** The demo IMAP server byte by byte: exact responses, SASL dialogues, STARTTLS, IDLE, literals. */

const certs = getTestCertificates();
const demo = useDemoImap();

describe('demo IMAP server on the wire', () => {
  it('greets with capabilities, refuses LOGIN and answers unknown commands BAD', async () => {
    const server = await demo.start();
    const client = await demo.wire(server);
    const greeting = await client.readLine();
    expect(greeting).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=XOAUTH2 AUTH=OAUTHBEARER\] /);
    expect(greeting).toContain('SASL-IR');
    expect((await client.command('a', 'LOGIN alice secret')).at(-1)).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect((await client.command('b', 'FROBNICATE')).at(-1)).toMatch(/^b BAD /);
    expect((await client.command('c', 'SELECT INBOX')).at(-1)).toMatch(/^c BAD /);
    expect(await client.command('d', 'NOOP')).toEqual(['d OK NOOP completed']);
    expect(await client.command('e', 'LOGOUT')).toEqual(['* BYE Logging out', 'e OK LOGOUT completed']);
  });

  it('answers a refused XOAUTH2 token like Gmail: error challenge, then NO', async () => {
    const server = await demo.start({ validateToken: () => false });
    const client = await demo.wire(server);
    await client.readLine();
    client.send(`a AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, 'expired')}\r\n`);
    const challenge = await client.readLine();
    expect(challenge.startsWith('+ ')).toBe(true);
    expect(JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString())).toEqual(GMAIL_ERROR);
    client.send('\r\n');
    expect(await client.readLine()).toBe('a NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)');
    expect(server.stats.failedLogins).toBe(1);
  });

  it('runs OAUTHBEARER without SASL-IR, fails on demand, then succeeds with post-login capabilities', async () => {
    const server = await demo.start();
    server.failNextLogins(1);
    const client = await demo.wire(server);
    await client.readLine();
    client.send('a AUTHENTICATE OAUTHBEARER\r\n');
    expect(await client.readLine()).toBe('+ ');
    client.send(`${oauthBearer(DEMO_USER, DEMO_TOKEN)}\r\n`);
    expect((await client.readLine()).startsWith('+ ey')).toBe(true);
    client.send('AQ==\r\n');
    expect(await client.readLine()).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    const ok = await client.command('b', `AUTHENTICATE OAUTHBEARER ${oauthBearer(DEMO_USER, DEMO_TOKEN)}`);
    expect(ok).toEqual([`b OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN X-DEMO-POSTLOGIN] ${DEMO_USER} authenticated (Success)`]);
    expect(server.stats.authentications.map((a) => a.ok)).toEqual([false, true]);
  });

  it('fetches by sequence sets, with literals in and out', async () => {
    const server = await demo.start();
    const messages = seedMailbox(server, DEMO_USER, [1, 2, 3, 4, 5].map((n) => ({ subject: `m${n}`, body: `body ${n}` })));
    const client = await demo.wire(server);
    await client.readLine();
    await client.command('a', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`);
    // A synchronising literal for the mailbox name: the server must ask for it with "+".
    client.send('b SELECT {5}\r\n');
    expect((await client.readLine()).startsWith('+ ')).toBe(true);
    client.send('INBOX\r\n');
    const select = await client.readUntilTagged('b');
    expect(select).toContain('* 5 EXISTS');
    expect(select).toContain('* 5 RECENT');
    expect(select.some((line) => line.startsWith('* OK [UIDVALIDITY '))).toBe(true);
    expect(select).toContain('* OK [UIDNEXT 6] Predicted next UID');
    expect(select.at(-1)).toBe('b OK [READ-WRITE] SELECT completed');
    const flags = await client.command('c', 'FETCH 2,4:5 (UID FLAGS)');
    expect(flags).toEqual(['* 2 FETCH (UID 2 FLAGS ())', '* 4 FETCH (UID 4 FLAGS ())', '* 5 FETCH (UID 5 FLAGS ())', 'c OK FETCH completed']);
    const text = await client.command('d', 'UID FETCH 3 (BODY[TEXT])');
    expect(text).toEqual(['* 3 FETCH (UID 3 BODY[TEXT] {8}', 'body 3', ' FLAGS (\\Seen))', 'd OK UID FETCH completed']);
    const size = messages[4]?.raw.length;
    expect(await client.command('e', 'FETCH * (RFC822.SIZE)')).toEqual([`* 5 FETCH (RFC822.SIZE ${size})`, 'e OK FETCH completed']);
    expect(await client.command('f', 'UID SEARCH ALL')).toEqual(['* SEARCH 1 2 3 4 5', 'f OK UID SEARCH completed']);
    expect(await client.command('g', 'SEARCH SEEN')).toEqual(['* SEARCH 3', 'g OK SEARCH completed']);
    client.send('h STORE 1 +FLAGS.SILENT {8+}\r\n\\Deleted\r\n');
    expect(await client.readUntilTagged('h')).toEqual(['h OK STORE completed']);
    expect(await client.command('i', 'EXPUNGE')).toEqual(['* 1 EXPUNGE', 'i OK EXPUNGE completed']);
    expect(await client.command('j', 'LIST "" "*"')).toEqual(['* LIST (\\HasNoChildren) "/" INBOX', 'j OK LIST completed']);
  });

  it('describes a message with ENVELOPE, BODYSTRUCTURE, INTERNALDATE and header sections', async () => {
    const server = await demo.start();
    const raw = buildMessage({
      from: '"Doe, Jane" <jane@example.com>',
      to: 'bob@example.com, Carol <carol@example.org>',
      subject: 'Hello "quoted"',
      date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      messageId: '<id1@example.com>',
      body: 'line one\nline two',
    });
    server.store.inbox(DEMO_USER).append(raw, ['\\Flagged'], new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));
    const client = await demo.wire(server);
    await client.readLine();
    await client.command('a', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`);
    expect((await client.command('b', 'EXAMINE INBOX')).at(-1)).toBe('b OK [READ-ONLY] EXAMINE completed');
    const jane = '("Doe, Jane" NIL "jane" "example.com")';
    expect(await client.command('c', 'FETCH 1 (ENVELOPE BODYSTRUCTURE INTERNALDATE FLAGS)')).toEqual([
      '* 1 FETCH (ENVELOPE ("Tue, 02 Jan 2024 03:04:05 +0000" "Hello \\"quoted\\"" ' +
        `(${jane}) (${jane}) (${jane}) ((NIL NIL "bob" "example.com")("Carol" NIL "carol" "example.org")) NIL NIL NIL "<id1@example.com>") ` +
        'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" 20 2) INTERNALDATE " 2-Jan-2024 03:04:05 +0000" FLAGS (\\Flagged))',
      'c OK FETCH completed',
    ]);
    expect(await client.command('d', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject From)])')).toEqual([
      `* 1 FETCH (BODY[HEADER.FIELDS (Subject From)] {${'From: "Doe, Jane" <jane@example.com>\r\nSubject: Hello "quoted"\r\n\r\n'.length}}`,
      'From: "Doe, Jane" <jane@example.com>',
      'Subject: Hello "quoted"',
      '',
      ')',
      'd OK FETCH completed',
    ]);
    // Read-only: RFC822 does not set \Seen, STORE is refused.
    expect((await client.command('e', 'FETCH 1 (RFC822.HEADER)'))[0]).toMatch(/^\* 1 FETCH \(RFC822.HEADER \{\d+\}$/);
    expect((await client.command('f', 'STORE 1 +FLAGS (\\Deleted)')).at(-1)).toBe('f NO [READ-ONLY] Mailbox is read-only');
    await client.command('g', 'SELECT INBOX');
    expect(await client.command('h', 'STORE 1 +FLAGS (\\Deleted)')).toEqual(['* 1 FETCH (FLAGS (\\Flagged \\Deleted))', 'h OK STORE completed']);
    expect(await client.command('i', 'CLOSE')).toEqual(['i OK CLOSE completed']);
    expect(await client.command('j', 'STATUS INBOX (MESSAGES UIDNEXT)')).toEqual(['* STATUS INBOX (MESSAGES 0 UIDNEXT 2)', 'j OK STATUS completed']);
  });

  it('reports delivered mail during IDLE and ends it on DONE', async () => {
    const server = await demo.start();
    seedMailbox(server, DEMO_USER, [{ subject: 'one' }, { subject: 'two' }]);
    const client = await demo.wire(server);
    await client.readLine();
    await client.command('a', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`);
    await client.command('b', 'SELECT INBOX');
    client.send('c IDLE\r\n');
    expect(await client.readLine()).toBe('+ idling');
    server.deliver(DEMO_USER, buildMessage({ subject: 'three' }));
    expect(await client.readLine()).toBe('* 3 EXISTS');
    client.send('DONE\r\n');
    expect(await client.readLine()).toBe('c OK IDLE terminated');
  });

  it('offers STARTTLS and LOGINDISABLED before TLS and drops bytes pipelined after STARTTLS', async () => {
    const server = await demo.start({ tls: 'starttls' });
    const client = await demo.wire(server, false);
    const greeting = await client.readLine();
    expect(greeting).toContain('STARTTLS LOGINDISABLED');
    expect(greeting).not.toContain('AUTH=');
    expect((await client.command('a', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`)).at(-1)).toMatch(/^a NO \[PRIVACYREQUIRED\]/);
    // RFC 3501 6.2.1: "b CAPABILITY" arrives before the handshake and must never be answered.
    client.send('s STARTTLS\r\nb CAPABILITY\r\n');
    expect(await client.readLine()).toBe('s OK Begin TLS negotiation now');
    await client.startTls(certs.caPem);
    const caps = await client.command('c', 'CAPABILITY');
    expect(caps[0]).toMatch(/^\* CAPABILITY .*AUTH=XOAUTH2/);
    expect(caps[0]).not.toContain('STARTTLS');
    expect(caps.at(-1)).toBe('c OK CAPABILITY completed');
    expect(server.stats.starttlsDiscardedBytes).toBe('b CAPABILITY\r\n'.length);
    expect((await client.command('d', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`)).at(-1)).toMatch(/^d OK /);
  });

  it('can inject bytes behind the STARTTLS OK, for testing clients that must discard them', async () => {
    const server = await demo.start({ tls: 'starttls', injectAfterStarttls: '* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n' });
    const client = await demo.wire(server, false);
    await client.readLine();
    client.send('s STARTTLS\r\n');
    expect(await client.readLine()).toBe('s OK Begin TLS negotiation now');
    expect(await client.readLine()).toBe('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected');
    await client.startTls(certs.caPem);
    expect((await client.command('c', 'NOOP')).at(-1)).toBe('c OK NOOP completed');
  });

  it('drops every connection on demand, as a crashing server would', async () => {
    const server = await demo.start();
    const client = await demo.wire(server);
    await client.readLine();
    expect(server.stats.openConnections).toBe(1);
    server.dropConnections();
    await waitFor(() => client.isClosed && server.stats.openConnections === 0);
  });

  it('writes a large literal with backpressure instead of buffering it', async () => {
    const server = await demo.start();
    const [big] = seedMailbox(server, DEMO_USER, [{ minBytes: 20 * 1024 * 1024 }]);
    let maxQueued = 0;
    const write = TLSSocket.prototype.write;
    TLSSocket.prototype.write = function (this: TLSSocket, ...args: Parameters<typeof write>) {
      const result = write.apply(this, args);
      maxQueued = Math.max(maxQueued, this.writableLength);
      return result;
    } as typeof write;
    try {
      const client = await demo.wire(server);
      await client.readLine();
      await client.command('a', `AUTHENTICATE XOAUTH2 ${xoauth2(DEMO_USER, DEMO_TOKEN)}`);
      await client.command('b', 'SELECT INBOX');
      const lines = await client.command('c', 'FETCH 1 BODY.PEEK[]');
      expect(lines[0]).toBe(`* 1 FETCH (BODY[] {${big?.raw.length}}`);
      expect(lines.at(-1)).toBe('c OK FETCH completed');
    } finally {
      TLSSocket.prototype.write = write;
    }
    expect(maxQueued).toBeLessThan(2 * 1024 * 1024);
  });

  it('lets a client refuse an untrusted certificate', async () => {
    const server = await demo.start({ cert: certs.untrustedCert.certPem, key: certs.untrustedCert.keyPem });
    await expect(WireClient.connect({ port: server.port, tlsCa: certs.caPem })).rejects.toThrow(/self[- ]signed/i);
    await waitFor(() => server.stats.connections === 1);
    expect(server.stats.successfulLogins).toBe(0);
  });
});
