import { describe, expect, it } from 'vitest';
import { decodeBase64Strict } from '../../src/sasl/base64.js';
import { LOGIN_PASSWORD_PROMPT, LOGIN_USERNAME_PROMPT, decodeLoginPassword, decodeLoginUsername } from '../../src/sasl/login.js';
import { OAUTHBEARER_ERROR_ACK, encodeOAuthBearer, encodeSaslName } from '../../src/sasl/oauthbearer.js';
import { actsAsItself, decodePlain, encodePlain } from '../../src/sasl/plain.js';
import { encodeXOAuth2, parseOAuthErrorChallenge } from '../../src/sasl/xoauth2.js';
import { Secret } from '../../src/secret.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('strict base64', () => {
  it('decodes canonical base64', () => {
    expect(decodeBase64Strict('').length).toBe(0);
    expect(decodeBase64Strict('QQ==').toString()).toBe('A');
    expect(decodeBase64Strict('QUI=').toString()).toBe('AB');
    expect(decodeBase64Strict('QUJD').toString()).toBe('ABC');
  });

  it.each(['QQ', 'QQ=', 'Q===', 'QR==', 'QU I=', 'QUJD\n', '!!!!', 'QUJD====', 'QU-_', '=QUJ'])('refuses %j', (text) => {
    expect(() => decodeBase64Strict(text)).toThrow(expect.objectContaining({ code: 'bad_input' }));
  });
});

describe('XOAUTH2 and OAUTHBEARER', () => {
  it('encodes XOAUTH2 as user=U^Aauth=Bearer T^A^A', () => {
    const encoded = encodeXOAuth2('alice@example.com', new Secret('ya29.token'));
    expect(Buffer.from(encoded, 'base64').toString()).toBe('user=alice@example.com\x01auth=Bearer ya29.token\x01\x01');
  });

  it('encodes OAUTHBEARER with a gs2 header, host and port (RFC 7628)', () => {
    const encoded = encodeOAuthBearer('a,b=c@example.com', new Secret('tok'), { host: 'imap.example.com', port: 993 });
    expect(Buffer.from(encoded, 'base64').toString()).toBe('n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01');
    expect(encodeSaslName('x=y,z')).toBe('x=3Dy=2Cz');
    expect(Buffer.from(OAUTHBEARER_ERROR_ACK, 'base64').toString()).toBe('\x01');
  });

  it('refuses a user with control characters and a token with spaces', () => {
    expect(() => encodeXOAuth2('a\x01b', new Secret('t'))).toThrow(expect.objectContaining({ code: 'config_invalid' }));
    expect(() => encodeXOAuth2('a', new Secret('t t'))).toThrow(expect.objectContaining({ code: 'token_rejected' }));
    expect(() => encodeXOAuth2('a', new Secret(''))).toThrow(expect.objectContaining({ code: 'token_rejected' }));
  });

  it('reads the secret-free fields of an error challenge', () => {
    const challenge = b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}');
    expect(parseOAuthErrorChallenge(challenge)).toEqual({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' });
    expect(parseOAuthErrorChallenge('not base64!')).toBeUndefined();
    expect(parseOAuthErrorChallenge(b64('"just a string"'))).toBeUndefined();
  });
});

describe('PLAIN', () => {
  it('decodes authzid NUL authcid NUL password, password as a Secret', () => {
    const creds = decodePlain(b64('\0alice\0pä ss'));
    expect(creds.authzid).toBe('');
    expect(creds.authcid).toBe('alice');
    expect(creds.password).toBeInstanceOf(Secret);
    expect(creds.password.reveal()).toBe('pä ss');
    expect(String(creds.password)).toBe('[redacted]');
    expect(decodePlain(b64('admin\0alice\0pw')).authzid).toBe('admin');
  });

  it('an authorization identity passes only when empty or the user itself, case-insensitively (RFC 4616 section 2)', () => {
    expect(actsAsItself('', 'alice@example.com')).toBe(true);
    expect(actsAsItself(undefined, 'alice@example.com')).toBe(true);
    expect(actsAsItself('Alice@Example.COM', 'alice@example.com')).toBe(true);
    expect(actsAsItself('rw@example.com', 'alice@example.com')).toBe(false);
    expect(actsAsItself('alice', 'alice@example.com')).toBe(false);
  });

  it('round-trips with encodePlain', () => {
    const creds = decodePlain(encodePlain('bob', new Secret('x y z')));
    expect([creds.authcid, creds.password.reveal()]).toEqual(['bob', 'x y z']);
  });

  it.each([
    ['no NUL', b64('alicepw')],
    ['one NUL', b64('alice\0pw')],
    ['three NULs', b64('\0alice\0pw\0')],
    ['empty user', b64('\0\0pw')],
    ['empty password', b64('\0alice\0')],
    ['empty message', ''],
    ['invalid base64', 'AGFsaWNlAHB3=='],
    ['invalid UTF-8', Buffer.from([0, 0x61, 0, 0xff, 0xfe]).toString('base64')],
  ])('refuses %s', (_name, message) => {
    expect(() => decodePlain(message)).toThrow(expect.objectContaining({ code: 'bad_input' }));
  });
});

describe('LOGIN', () => {
  it('has the usual prompts and decodes answers', () => {
    expect(Buffer.from(LOGIN_USERNAME_PROMPT, 'base64').toString()).toBe('Username:');
    expect(Buffer.from(LOGIN_PASSWORD_PROMPT, 'base64').toString()).toBe('Password:');
    expect(decodeLoginUsername(b64('alice'))).toBe('alice');
    expect(decodeLoginPassword(b64('pw')).reveal()).toBe('pw');
    expect(() => decodeLoginUsername('')).toThrow(expect.objectContaining({ code: 'bad_input' }));
    expect(() => decodeLoginPassword('***')).toThrow(expect.objectContaining({ code: 'bad_input' }));
  });
});
