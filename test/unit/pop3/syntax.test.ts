import { describe, expect, it } from 'vitest';
import { PRELOGIN_COMMANDS, preLoginCapabilities } from '../../../src/pop3/commands.js';
import { pop3ErrorReply } from '../../../src/pop3/replies.js';
import { parseCommandLine } from '../../../src/pop3/syntax.js';
import { ProxyError } from '../../../src/errors.js';
import { startDeadline } from '../../../src/net/deadline.js';

function parse(text: string | Buffer) {
  return parseCommandLine(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
}

describe('parseCommandLine', () => {
  it('upper-cases the keyword and keeps the rest of the line unchanged', () => {
    expect(parse('user alice@example.com')).toEqual({ ok: true, command: { verb: 'USER', rest: 'alice@example.com', args: ['alice@example.com'] } });
    expect(parse('PASS  two  spaces and "quotes" \\ ')).toMatchObject({ ok: true, command: { verb: 'PASS', rest: ' two  spaces and "quotes" \\ ' } });
    expect(parse('CAPA')).toEqual({ ok: true, command: { verb: 'CAPA', rest: '', args: [] } });
    expect(parse('AUTH PLAIN =')).toMatchObject({ ok: true, command: { args: ['PLAIN', '='] } });
  });

  it('takes UTF-8, and Latin-1 when the bytes are not UTF-8', () => {
    expect(parse('PASS pässwört')).toMatchObject({ command: { rest: 'pässwört' } });
    expect(parse(Buffer.from('PASS p\xe4ssw\xf6rt', 'latin1'))).toMatchObject({ command: { rest: 'pässwört' } });
  });

  it('enforces the 255-octet limit of RFC 2449, CRLF included', () => {
    expect(parse(`PASS ${'x'.repeat(248)}`).ok).toBe(true);
    const over = parse(`PASS ${'x'.repeat(249)}`);
    expect(over.ok).toBe(false);
    expect(!over.ok && over.error.message).toMatch(/Line too long: at most 255 octets/);
  });

  it('refuses empty lines, control characters and odd keywords', () => {
    for (const bad of ['', ' USER x', 'PASS a\0b', 'PASS a\rb', 'US?R x', 'PASS a\x7fb']) {
      const result = parse(bad);
      expect(result.ok, JSON.stringify(bad)).toBe(false);
      expect(!result.ok && result.error.code).toBe('bad_input');
    }
  });
});

describe('command table and capabilities', () => {
  it('PASS is only valid right after USER; TRANSACTION commands are known but refused before login', () => {
    expect(PRELOGIN_COMMANDS.get('PASS')?.states).toEqual(['user_given']);
    expect(PRELOGIN_COMMANDS.get('USER')?.states).toContain('authorization');
    for (const verb of ['STAT', 'LIST', 'RETR', 'DELE', 'TOP', 'UIDL', 'NOOP', 'RSET']) expect(PRELOGIN_COMMANDS.has(verb)).toBe(true);
  });

  it('offers USER and SASL unless a STARTTLS port is still plaintext, STLS only when it can', () => {
    expect(preLoginCapabilities({ plaintextRefused: false, canStartTls: false })).toEqual(
      ['USER', 'SASL PLAIN LOGIN', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'IMPLEMENTATION oauth-mail-proxy'],
    );
    const plaintext = preLoginCapabilities({ plaintextRefused: true, canStartTls: true });
    expect(plaintext).toContain('STLS');
    expect(plaintext).not.toContain('USER');
    expect(plaintext.join(' ')).not.toContain('SASL');
  });
});

describe('pop3ErrorReply', () => {
  it('maps every error code to -ERR with the RFC 3206 response code a client can act on', () => {
    const reply = (code: ProxyError['code'], message = 'details') => pop3ErrorReply(new ProxyError(code, message));
    expect(reply('auth_failed', 'wrong password for alice')).toEqual({ line: '-ERR [AUTH] Invalid user name or password', close: false });
    expect(reply('token_rejected').line).toMatch(/^-ERR \[AUTH\] /);
    expect(reply('needs_authorization', 'run oauth-mail-proxy auth alice').line).toBe('-ERR [AUTH] Account needs authorization: run oauth-mail-proxy auth alice');
    expect(reply('idp_unavailable').line).toMatch(/^-ERR \[SYS\/TEMP\] Identity provider/);
    expect(reply('upstream_unavailable').line).toMatch(/^-ERR \[SYS\/TEMP\] Mail server/);
    expect(reply('store_failed').line).toMatch(/^-ERR \[SYS\/TEMP\]/);
    expect(reply('config_invalid', 'No POP3 server').line).toBe('-ERR [SYS/PERM] No POP3 server');
    expect(reply('bad_input', 'PASS must follow USER')).toEqual({ line: '-ERR PASS must follow USER', close: false });
    expect(reply('aborted', 'Server shutting down')).toEqual({ line: '-ERR [SYS/TEMP] Server shutting down', close: true });
    expect(pop3ErrorReply(new Error('boom')).line).toBe('-ERR [SYS/TEMP] Internal error, try again later');
  });

  it('a timeout ends the session; a message cannot break the framing', async () => {
    const deadline = startDeadline(1, 'limit_exceeded', 'no command for 1 s');
    await new Promise((r) => setTimeout(r, 20));
    expect(pop3ErrorReply(deadline.signal.reason)).toEqual({ line: '-ERR Autologout; no command for 1 s', close: true });
    expect(pop3ErrorReply(new ProxyError('bad_input', 'a\r\n+OK forged')).line).toBe('-ERR a +OK forged');
  });
});
