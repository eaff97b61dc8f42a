import { describe, expect, it } from 'vitest';
import { parseListen, listenProblem } from '../../../src/config/listen-address.js';
import { parseConfig } from '../../../src/config/load.js';

/**
 * What `check` must refuse because `serve` could not use it (findings of a black-box test):
 * each refusal names the key path and the line.
 */
const HASH = 'scrypt$ln=10,r=8,p=1$DHInEo6C6J21o8lj2WGCeg==$O5l3KVZSiuui8S6no3OBwH0yf+PbVi+F1YEgOMAfU+I=';

function config(parts: { listen?: string; hash?: string; provider?: string; admin?: string } = {}): string {
  return `
listeners:
  - protocol: imap
    listen: ${parts.listen ?? '127.0.0.1:1143'}
providers:
  corp:
${parts.provider ?? '    token_url: https://idp.example.com/token'}
    client_id: proxy
    servers: { imap: { host: imap.example.com, port: 993 } }
accounts:
  - username: alice@example.com
    password_hash: "${parts.hash ?? HASH}"
    provider: corp
    flow: device_code
${parts.admin ?? ''}`;
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('listen addresses', () => {
  it.each([
    ['127.0.0.1:99999', /config:4 listeners\[0\]\.listen: port 99999 is out of range \(0-65535\)/],
    ['999.1.1.1:23110', /config:4 listeners\[0\]\.listen: 999\.1\.1\.1 is not an IPv4 address/],
    ['"[1.2.3.4]:1143"', /config:4 listeners\[0\]\.listen: \[1\.2\.3\.4\] is not an IPv6 address/],
    ['"*:23110"', /config:4 listeners\[0\]\.listen: expected a host before the port: 0\.0\.0\.0/],
    ['bad_host:1143', /config:4 listeners\[0\]\.listen: bad_host is not an IP address or host name/],
    ['127.0.0.1:x', /config:4 listeners\[0\]\.listen: expected host:port/],
  ])('refuses listen %s with its line', (listen, expected) => {
    expect(messageOf(() => parseConfig(config({ listen, provider: '    device_authorization_url: https://idp.example.com/device\n    token_url: https://idp.example.com/token' }))))
      .toMatch(expected);
  });

  it('refuses a bad admin.listen the same way', () => {
    const msg = messageOf(() => parseConfig(config({ admin: 'admin:\n  listen: 127.0.0.1:65536\n' })));
    expect(msg).toMatch(/config:16 admin\.listen: port 65536 is out of range/);
  });

  it('accepts IPv4, bracketed IPv6 and DNS names, ports 0 to 65535', () => {
    for (const listen of ['0.0.0.0:0', '127.0.0.1:65535', '[::]:1143', '[::1]:993', 'localhost:1143', 'mail-proxy.internal.:25']) {
      expect(listenProblem(listen), listen).toBeUndefined();
    }
    expect(parseListen('[::1]:993')).toEqual({ host: '::1', port: 993 });
    expect(() => parseListen('127.0.0.1:99999')).toThrow(/listen "127\.0\.0\.1:99999": port 99999 is out of range/);
  });
});

describe('password hashes', () => {
  it.each([
    ['scrypt$ln=40,r=8,p=1$DHInEo6C6J21o8lj2WGCeg==$O5l3KVZSiuui8S6no3OBwH0yf+PbVi+F1YEgOMAfU+I=', /ln=40 is out of range/],
    ['scrypt$ln=16,r=1,p=1$DHInEo6C6J21o8lj2WGCeg==$O5l3KVZSiuui8S6no3OBwH0yf+PbVi+F1YEgOMAfU+I=', /ln=16 needs r of at least 2/],
    ['scrypt$ln=15,r=8,p=1$REPLACE$ME', /salt is not base64/],
    ['scrypt$...', /expected a hash printed by `oauth-mail-proxy hash-password`/],
  ])('refuses %s naming accounts[0].password_hash and its line', (hash, expected) => {
    const msg = messageOf(() => parseConfig(config({ hash })));
    expect(msg).toMatch(/config:12 accounts\[0\]\.password_hash: /);
    expect(msg).toMatch(expected);
  });

  it('refuses an unusable admin.password_hash', () => {
    const msg = messageOf(() => parseConfig(config({ admin: 'admin:\n  password_hash: "scrypt$ln=9,r=8,p=1$AAAA$AAAA"\n' })));
    expect(msg).toMatch(/config:16 admin\.password_hash: ln=9 is out of range/);
  });
});

describe('provider endpoints', () => {
  it.each(['authorize_url', 'device_authorization_url', 'token_url'])('refuses a plain-http %s off loopback', (key) => {
    const endpoints = ['token_url', 'device_authorization_url', 'authorize_url']
      .map((k) => `    ${k}: ${k === key ? 'http' : 'https'}://idp.example.com/${k}`);
    const msg = messageOf(() => parseConfig(config({ provider: endpoints.join('\n') })));
    const line = 7 + endpoints.findIndex((l) => l.includes(key));
    expect(msg).toMatch(new RegExp(`config:${line} providers\\.corp\\.${key}: must be https \\(plain http only on a loopback address\\)`));
  });

  it('says once that a value is no URL at all', () => {
    const msg = messageOf(() => parseConfig(config({ provider: '    token_url: idp.example.com/token' })));
    expect(msg.match(/providers\.corp\.token_url/g)).toHaveLength(1);
  });

  it('accepts plain http on loopback (the demo identity provider)', () => {
    const provider = ['token_url', 'device_authorization_url', 'authorize_url'].map((k) => `    ${k}: http://127.0.0.1:9000/${k}`).join('\n');
    expect(parseConfig(config({ provider })).accounts[0]?.oauth.deviceAuthorizationUrl).toBe('http://127.0.0.1:9000/device_authorization_url');
  });
});

describe('YAML problems', () => {
  it('names the line, column and key of an alias without an anchor', () => {
    const msg = messageOf(() => parseConfig(config({ listen: '*:23110' })));
    expect(msg).toMatch(/config:4 listeners\[0\]\.listen: unresolved alias \*:23110 at line 4, column 13/);
    expect(msg).toContain('quote it');
  });

  it('gives every YAML error and warning a line', () => {
    expect(messageOf(() => parseConfig('a: 1\na: 2\n'))).toMatch(/config:2 Map keys must be unique at line 2, column 1/);
    expect(messageOf(() => parseConfig('listeners: !frob [1]\n'))).toMatch(/config:1 Unresolved tag: !frob at line 1, column 12/);
  });

  it('gives an alias bomb a line instead of a bare ReferenceError', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const msg = messageOf(() => parseConfig(bomb.join('\n')));
    expect(msg).toMatch(/invalid YAML:\n\s+config:2 Excessive alias count .* \(the first alias is at line 2\)/);
  });
});
