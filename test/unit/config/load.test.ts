import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../../src/config/load.js';
import { isAllowedTokenUrl } from '../../../src/config/endpoint-url.js';

const minimal = `
listeners:
  - protocol: imap
    listen: 127.0.0.1:1143
accounts:
  - username: alice@example.com
    password_hash: "scrypt$ln=10,r=8,p=1$DHInEo6C6J21o8lj2WGCeg==$O5l3KVZSiuui8S6no3OBwH0yf+PbVi+F1YEgOMAfU+I="
    provider: google
    client_id: cid
    flow: refresh_token
    refresh_token: rt-1
`;

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('config loading', () => {
  it('fills in the google preset and defaults', () => {
    const cfg = parseConfig(minimal);
    const [a] = cfg.accounts;
    expect(a?.oauth.tokenUrl).toBe('https://oauth2.googleapis.com/token');
    expect(a?.servers.imap).toMatchObject({ host: 'imap.gmail.com', port: 993, tls: 'implicit', insecureSkipVerify: false });
    expect(a?.upstreamUsername).toBe('alice@example.com');
    expect(a?.refreshTokenSeed?.reveal()).toBe('rt-1');
    expect(String(a?.refreshTokenSeed)).toBe('[redacted]');
    expect(cfg.listeners[0]).toMatchObject({ tls: 'none', min_tls_version: 'TLSv1.2' });
    expect(cfg.log.level).toBe('info');
  });

  it('uses the configured Microsoft tenant and the app-only scope for client credentials', () => {
    const cfg = parseConfig(`
listeners: [{ protocol: imap, listen: "[::1]:1143" }]
accounts:
  - { username: a@contoso.com, password: pw, provider: microsoft, tenant: contoso.onmicrosoft.com,
      flow: client_credentials, client_id: app, client_secret: s }
`);
    const a = cfg.accounts[0]!;
    expect(a.oauth.tokenUrl).toBe('https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    expect(a.oauth.scope).toBe('https://outlook.office365.com/.default');
    expect(a.servers.smtp).toMatchObject({ host: 'smtp.office365.com', port: 587, tls: 'starttls' });
  });

  it('names the key and the line of each problem', () => {
    const msg = messageOf(() => parseConfig(minimal.replace('1143', 'x').replace('flow: refresh_token', 'flow: magic')));
    expect(msg).toMatch(/config:4 listeners\[0\]\.listen: expected host:port/);
    expect(msg).toMatch(/config:10 accounts\[0\]\.flow: /);
    expect(messageOf(() => parseConfig(minimal.replace('provider: google', 'provider: nowhere')))).toMatch(/config:8 accounts\[0\]\.provider: unknown provider "nowhere"/);
  });

  it('rejects unknown keys', () => {
    expect(messageOf(() => parseConfig(minimal.replace('flow:', 'flwo: x\n    flow:')))).toMatch(/accounts\[0\]/);
  });

  it('interpolates ${ENV} and reports a missing variable with its line', () => {
    const text = minimal.replace('refresh_token: rt-1', 'refresh_token: ${RT}');
    expect(parseConfig(text, { env: { RT: 'from-env' } }).accounts[0]?.refreshTokenSeed?.reveal()).toBe('from-env');
    expect(messageOf(() => parseConfig(text, { env: {} }))).toMatch(/config:11 accounts\[0\]\.refresh_token: environment variable RT is not set/);
  });

  it('reads *_file secrets relative to the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-cfg-'));
    writeFileSync(join(dir, 'alice.rt'), 'rt-from-file\n');
    writeFileSync(join(dir, 'secret.txt'), 'client-secret\n');
    writeFileSync(join(dir, 'config.yaml'), minimal
      .replace('refresh_token: rt-1', 'refresh_token_file: ./alice.rt\n    client_secret_file: secret.txt'));
    const cfg = loadConfigFile(join(dir, 'config.yaml'));
    expect(cfg.accounts[0]?.refreshTokenSeed?.reveal()).toBe('rt-from-file');
    expect(cfg.accounts[0]?.oauth.clientSecret?.reveal()).toBe('client-secret');
    expect(cfg.tokenStore.path).toBe(join(dir, 'data/tokens.enc'));
    writeFileSync(join(dir, 'config.yaml'), minimal.replace('refresh_token: rt-1', 'refresh_token_file: ./missing.rt'));
    expect(messageOf(() => loadConfigFile(join(dir, 'config.yaml')))).toMatch(/accounts\[0\]\.refresh_token_file: cannot read \.\/missing\.rt: ENOENT/);
  });

  it('requires https token endpoints except on loopback', () => {
    expect(isAllowedTokenUrl('https://idp.example.com/token')).toBe(true);
    expect(isAllowedTokenUrl('http://127.0.0.1:9000/token')).toBe(true);
    expect(isAllowedTokenUrl('http://[::1]:9000/token')).toBe(true);
    expect(isAllowedTokenUrl('http://localhost/token')).toBe(true);
    expect(isAllowedTokenUrl('http://idp.example.com/token')).toBe(false);
    expect(isAllowedTokenUrl('http://10.0.0.1/token')).toBe(false);
    const text = `
listeners: [{ protocol: imap, listen: 127.0.0.1:1143 }]
providers:
  corp:
    token_url: http://idp.example.com/token
    client_id: x
    servers: { imap: { host: imap.example.com, port: 993 } }
accounts:
  - { username: a, password: pw, provider: corp, flow: refresh_token, refresh_token: r }
`;
    expect(messageOf(() => parseConfig(text))).toMatch(/config:5 providers\.corp\.token_url: must be https/);
  });

  it('requires a local password except for the password flow', () => {
    expect(messageOf(() => parseConfig(minimal.replace(/    password_hash: .*\n/, '')))).toMatch(/needs a local password/);
  });

  it('reports YAML syntax errors with a line', () => {
    expect(messageOf(() => parseConfig('listeners:\n  - protocol: imap\n   listen: [\n'))).toMatch(/invalid YAML:\n\s+config:\d+/);
  });
});
