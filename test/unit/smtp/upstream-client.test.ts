import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamServer } from '../../../src/config/resolve.js';
import { Secret } from '../../../src/secret.js';
import { loginSmtpUpstream } from '../../../src/smtp/upstream-client.js';
import { getTestCertificates } from '../../fakes/certs.js';

/**
 * The upstream SMTP client against a scripted server over verified implicit TLS: what goes on
 * the wire for each SASL case (RFC 4954, RFC 7628), how replies are read, and how DATA is sent.
 */

type Respond = (line: string) => string | undefined;

interface Scripted {
  server: UpstreamServer;
  /** Every command line the server received (DATA content excluded). */
  lines: string[];
  /** The raw DATA bytes, end marker included. */
  data: Buffer[];
}

const servers: Server[] = [];
/** Server ends of connections, destroyed after each test: a paused one never reads our FIN, so close() would wait forever. */
const accepted = new Set<TLSSocket>();

afterEach(async () => {
  for (const socket of accepted) socket.destroy();
  accepted.clear();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A TLS server that greets, answers `EHLO` with `ehlo`, and every other line with `respond`. */
async function scripted(respond: Respond, options: { greeting?: string; dataReply?: string; stallData?: boolean } = {}): Promise<Scripted> {
  const certs = getTestCertificates();
  const result: Scripted = { server: undefined as unknown as UpstreamServer, lines: [], data: [] };
  const server = createServer({ cert: certs.certPem, key: certs.keyPem }, (socket: TLSSocket) => {
    socket.on('error', () => undefined);
    accepted.add(socket);
    socket.write(`${options.greeting ?? '220 scripted ESMTP'}\r\n`);
    let buffer = Buffer.alloc(0);
    let inData = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          result.data.push(buffer.subarray(0, end + 5));
          buffer = buffer.subarray(end + 5);
          inData = false;
          socket.write(`${options.dataReply ?? '250 2.0.0 OK queued as 42'}\r\n`);
          continue;
        }
        const lf = buffer.indexOf('\r\n');
        if (lf === -1) return;
        const line = buffer.subarray(0, lf).toString('latin1');
        buffer = buffer.subarray(lf + 2);
        result.lines.push(line);
        const reply = line.startsWith('EHLO ') ? '250-scripted\r\n250-SIZE 1000\r\n250 AUTH XOAUTH2 OAUTHBEARER' : respond(line);
        if (reply === '354 go on') inData = true;
        // A server that stops reading: once the socket buffers fill, our writes must wait, then give up.
        if (reply === '354 go on' && options.stallData) socket.pause();
        if (reply !== undefined) socket.write(`${reply}\r\n`);
      }
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  result.server = { host: '127.0.0.1', port, tls: 'implicit', caFile: certs.caFile, servername: 'localhost', insecureSkipVerify: false };
  return result;
}

const TOKEN = new Secret('ya29.token-value');
const signal = (): AbortSignal => AbortSignal.timeout(5000);
const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('latin1');
const challenge = Buffer.from(JSON.stringify({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' })).toString('base64');

describe('upstream SMTP login', () => {
  it('XOAUTH2 with an initial response, then MAIL, a multi-line RCPT refusal, DATA with dot-stuffing', async () => {
    const s = await scripted((line) => {
      if (line.startsWith('AUTH ')) return '235 2.7.0 Accepted';
      if (line.startsWith('MAIL ')) return '250 2.1.0 OK';
      if (line === 'RCPT TO:<nobody@example.org>') return '550-5.1.1 No such user\r\n550 5.1.1 Really';
      if (line === 'DATA') return '354 go on';
      return '500 unexpected';
    });
    const session = await loginSmtpUpstream(s.server, 'alice@example.com', TOKEN, 'xoauth2', signal());
    expect(s.lines[0]).toBe('EHLO [127.0.0.1]');
    expect(s.lines[1]).toMatch(/^AUTH XOAUTH2 \S+$/);
    expect(decode(s.lines[1]!.split(' ')[2]!)).toBe('user=alice@example.com\x01auth=Bearer ya29.token-value\x01\x01');
    expect(session.extensions.get('SIZE')).toBe('1000');
    expect(await session.mailFrom('alice@example.com', ['SIZE=10'], signal())).toEqual({ code: 250, lines: ['2.1.0 OK'] });
    expect(s.lines.at(-1)).toBe('MAIL FROM:<alice@example.com> SIZE=10');
    expect(await session.rcptTo('nobody@example.org', signal())).toEqual({ code: 550, lines: ['5.1.1 No such user', '5.1.1 Really'] });
    expect((await session.beginData(signal())).code).toBe(354);
    await session.writeBody(Buffer.from('Subject: x\r\n\r\n.dot\r\n'));
    await session.writeBody(Buffer.from('.\r\nend'));
    expect(await session.endData(signal())).toEqual({ code: 250, lines: ['2.0.0 OK queued as 42'] });
    expect(Buffer.concat(s.data).toString('latin1')).toBe('Subject: x\r\n\r\n..dot\r\n..\r\nend\r\n.\r\n');
    await session.quit();
    expect(session.usable).toBe(false);
  });

  it('a token too long for one 512-octet line goes on its own line after AUTH XOAUTH2 (RFC 4954 section 4)', async () => {
    const s = await scripted((line) => (line === 'AUTH XOAUTH2' ? '334 ' : line.startsWith('AUTH') ? '501 no' : '235 2.7.0 Accepted'));
    const long = new Secret(`t${'x'.repeat(4095)}`);
    await (await loginSmtpUpstream(s.server, 'alice@example.com', long, 'xoauth2', signal())).quit();
    expect(s.lines[1]).toBe('AUTH XOAUTH2');
    expect(decode(s.lines[2]!)).toBe(`user=alice@example.com\x01auth=Bearer ${long.reveal()}\x01\x01`);
  });

  it('XOAUTH2 error challenge: an empty line, then 535 is token_rejected with the challenge details', async () => {
    const s = await scripted((line) => (line.startsWith('AUTH') ? `334 ${challenge}` : '535 5.7.8 Username and Password not accepted'));
    await expect(loginSmtpUpstream(s.server, 'alice@example.com', TOKEN, 'xoauth2', signal())).rejects.toMatchObject({
      code: 'token_rejected', message: expect.stringContaining('status 401'),
    });
    expect(s.lines.slice(2)).toEqual(['']);
  });

  it('OAUTHBEARER (RFC 7628): host and port in the message, an error challenge answered with ^A', async () => {
    const s = await scripted((line) => (line.startsWith('AUTH') ? `334 ${challenge}` : '535 5.7.8 no'));
    await expect(loginSmtpUpstream(s.server, 'a,b=c@example.com', TOKEN, 'oauthbearer', signal())).rejects.toMatchObject({ code: 'token_rejected' });
    const [verb, mechanism, payload = ''] = s.lines[1]!.split(' ');
    expect([verb, mechanism]).toEqual(['AUTH', 'OAUTHBEARER']);
    expect(decode(payload)).toBe(`n,a=a=2Cb=3Dc@example.com,\x01host=localhost\x01port=${s.server.port}\x01auth=Bearer ya29.token-value\x01\x01`);
    expect(s.lines[2]).toBe('AQ==');
  });

  it('a temporary AUTH failure (454) or a refusing greeting is the server\'s problem, not the token\'s', async () => {
    const temp = await scripted(() => '454 4.7.0 Temporary authentication failure');
    await expect(loginSmtpUpstream(temp.server, 'alice@example.com', TOKEN, 'xoauth2', signal())).rejects.toMatchObject({
      code: 'upstream_unavailable', message: expect.stringContaining('454 4.7.0 Temporary authentication failure'),
    });
    const closed = await scripted(() => undefined, { greeting: '554 5.3.2 go away' });
    await expect(loginSmtpUpstream(closed.server, 'alice@example.com', TOKEN, 'xoauth2', signal())).rejects.toMatchObject({
      code: 'upstream_unavailable', message: expect.stringContaining('refused the connection: 554 5.3.2 go away'),
    });
  });

  it('a server that refuses DATA gets no message bytes; its reply comes back as it is', async () => {
    const s = await scripted((line) => (line.startsWith('AUTH') ? '235 ok' : line === 'DATA' ? '554 5.5.1 No valid recipients' : '250 ok'));
    const session = await loginSmtpUpstream(s.server, 'alice@example.com', TOKEN, 'xoauth2', signal());
    await session.mailFrom('a@b', [], signal());
    expect(await session.beginData(signal())).toEqual({ code: 554, lines: ['5.5.1 No valid recipients'] });
    await expect(session.writeBody(Buffer.from('x'))).rejects.toMatchObject({ code: 'upstream_unavailable', message: expect.stringContaining('no DATA in progress') });
    expect(await session.reset(signal())).toEqual({ code: 250, lines: ['ok'] });
    session.destroy();
  });
});

describe('upstream SMTP message body', () => {
  const accept: Respond = (line) => (line.startsWith('AUTH') ? '235 ok' : line === 'DATA' ? '354 go on' : '250 ok');
  const chunk = Buffer.alloc(64 * 1024, 'a');

  async function inData(s: Scripted, dataSignal: AbortSignal, dataStallTimeoutMs = 5000) {
    const session = await loginSmtpUpstream(s.server, 'alice@example.com', TOKEN, 'xoauth2', signal(), { dataStallTimeoutMs });
    await session.mailFrom('a@b', [], signal());
    expect((await session.beginData(dataSignal)).code).toBe(354);
    return session;
  }

  /** Writes until a write has to wait for the server, and returns that wait. */
  function firstWait(session: Awaited<ReturnType<typeof inData>>): Promise<void> {
    for (;;) {
      const wait = session.writeBody(chunk);
      if (wait) return wait;
    }
  }

  it('a server that stops taking bytes fails the write once one wait has lasted the stall timeout', async () => {
    const s = await scripted(accept, { stallData: true });
    const session = await inData(s, signal(), 300);
    let waitStarted = 0;
    const fill = async (): Promise<void> => {
      for (;;) {
        const wait = session.writeBody(chunk);
        waitStarted = Date.now();
        if (wait) await wait;
      }
    };
    const err: unknown = await fill().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'upstream_unavailable', message: `SMTP server 127.0.0.1:${s.server.port} stopped taking the message` });
    expect((err as Error).cause).toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - waitStarted).toBeGreaterThanOrEqual(280);
    session.destroy();
  });

  it('time spent waiting for the client does not count toward the stall timeout', async () => {
    const s = await scripted(accept);
    const session = await inData(s, signal(), 100);
    await session.writeBody(Buffer.from('Subject: slow\r\n\r\n'));
    await new Promise((resolve) => setTimeout(resolve, 350));
    await session.writeBody(Buffer.from('.still here\r\n'));
    expect((await session.endData(signal())).code).toBe(250);
    expect(Buffer.concat(s.data).toString('latin1')).toBe('Subject: slow\r\n\r\n..still here\r\n.\r\n');
    session.destroy();
  });

  it('a write waiting for the server fails when the connection is dropped or the signal aborts', async () => {
    const dropped = await inData(await scripted(accept, { stallData: true }), signal());
    const wait = firstWait(dropped);
    dropped.destroy();
    await expect(wait).rejects.toMatchObject({ code: 'upstream_unavailable', message: expect.stringContaining('closed the connection during DATA') });

    const controller = new AbortController();
    const aborted = await inData(await scripted(accept, { stallData: true }), controller.signal);
    const pending = firstWait(aborted);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'aborted' });
    aborted.destroy();
  });
});
