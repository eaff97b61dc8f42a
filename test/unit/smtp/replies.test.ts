import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../../../src/errors.js';
import { startDeadline } from '../../../src/net/deadline.js';
import { smtpErrorReply, upstreamReplyError } from '../../../src/smtp/replies.js';
import type { SmtpReply } from '../../../src/smtp/upstream-io.js';
import { SmtpWireClient } from '../../fakes/smtp-wire-client.js';

/** The one error-to-reply mapping (SPEC section 5), and upstream replies through smtp-server as they are. */

describe('smtpErrorReply', () => {
  it.each([
    ['auth_failed', 'login', 535, '5.7.8 Authentication credentials invalid'],
    ['idp_unavailable', 'login', 454, '4.7.0 Identity provider unavailable, try again later'],
    ['upstream_unavailable', 'login', 454, '4.7.0 Mail server unavailable, try again later'],
    ['upstream_unavailable', 'transaction', 451, '4.4.0 Connection to the mail server failed, try again later'],
    ['store_failed', 'login', 454, '4.7.0 Token store unavailable, try again later'],
    ['token_rejected', 'login', 535, expect.stringMatching(/^5\.7\.8 The mail server rejected the access token/)],
    ['aborted', 'transaction', 421, '4.3.2 Service shutting down, try again later'],
  ] as const)('%s during %s: %i', (code, phase, responseCode, message) => {
    expect(smtpErrorReply(new ProxyError(code, 'details'), phase)).toMatchObject({ responseCode, message });
  });

  it('needs authorization: 535 5.7.8 with the action from the message, on one printable line', () => {
    const err = new ProxyError('needs_authorization', 'account a@b: invalid_grant: put a new refresh_token\r\n250 forged');
    expect(smtpErrorReply(err, 'login')).toMatchObject({
      responseCode: 535, message: '5.7.8 Account needs authorization: account a@b: invalid_grant: put a new refresh_token 250 forged',
    });
  });

  it('a timeout is 421 4.4.2, a size limit 552 5.3.4, anything unknown 451 4.3.0', () => {
    const deadline = startDeadline(0, 'limit_exceeded', 'no command for 30 s');
    return new Promise<void>((resolve) => {
      deadline.signal.addEventListener('abort', () => {
        expect(smtpErrorReply(deadline.signal.reason, 'transaction')).toMatchObject({ responseCode: 421, message: '4.4.2 no command for 30 s' });
        expect(smtpErrorReply(new ProxyError('limit_exceeded', 'too big'), 'transaction')).toMatchObject({ responseCode: 552 });
        expect(smtpErrorReply(new Error('bug'), 'transaction')).toMatchObject({ responseCode: 451, message: '4.3.0 Internal error, try again later' });
        resolve();
      });
    });
  });
});

describe('upstream replies through smtp-server', () => {
  const replies = new Map<string, SmtpReply>([
    ['multi@example.org', { code: 550, lines: ['5.1.1 The account does not exist.', '5.1.1 Check the address.'] }],
    ['single@example.org', { code: 451, lines: ['4.7.1 Try again later'] }],
    ['bare@example.org', { code: 554, lines: [''] }],
    ['control@example.org', { code: 550, lines: ['5.7.1 bad\r\n250 forged'] }],
  ]);
  let server: SMTPServer;
  let port: number;

  beforeAll(async () => {
    server = new SMTPServer({
      logger: false, authOptional: true, disabledCommands: ['STARTTLS'], disableReverseLookup: true,
      onRcptTo: (address, _session, callback) => {
        const reply = replies.get(address.address);
        callback(reply ? upstreamReplyError(reply) : undefined);
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(resolve)));

  it('reach the client with their code, enhanced code and every line', async () => {
    const c = await SmtpWireClient.open({ port });
    try {
      await c.command('EHLO t.test');
      await c.command('MAIL FROM:<a@example.com>');
      expect(await c.command('RCPT TO:<multi@example.org>')).toEqual({
        code: 550, lines: ['550-5.1.1 The account does not exist.', '550 5.1.1 Check the address.'],
      });
      expect(await c.command('RCPT TO:<single@example.org>')).toEqual({ code: 451, lines: ['451 4.7.1 Try again later'] });
      expect((await c.command('RCPT TO:<bare@example.org>')).code).toBe(554);
      expect(await c.command('RCPT TO:<control@example.org>')).toEqual({ code: 550, lines: ['550 5.7.1 bad 250 forged'] });
      expect((await c.command('RCPT TO:<ok@example.org>')).code).toBe(250);
    } finally {
      c.close();
    }
  });
});
