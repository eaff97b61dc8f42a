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

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A TLS server that greets, answers `EHLO` with `ehlo`, and every other line with `respond`. */
async function scripted(respond: Respond, options: { greeting?: string; dataReply?: string } = {}): Promise<Scripted> {
  const certs = getTestCertificates();
  const result: Scripted = { server: undefined as unknown as UpstreamServer, lines: [], data: [] };
  const server = createServer({ cert: certs.certPem, key: certs.keyPem }, (socket: TLSSocket) => {
    socket.on('error', () => undefined);
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
    await session.writeBody(Buffer.from('Subject: x\r\n\r\n.dot\r\n'), signal());
    await session.writeBody(Buffer.from('.\r\nend'), signal());
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
    expect(await session.reset(signal())).toEqual({ code: 250, lines: ['ok'] });
    session.destroy();
  });
});
