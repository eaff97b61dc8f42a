import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp, type MockIdp } from '../../../src/demo/mock-idp.js';
import { isProxyError, type ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { createOAuthClient, oauthErrorCode, type OAuthClientOptions } from '../../../src/tokens/oauth-client.js';
import { CLIENT_ID, CLIENT_SECRET, signal, tempDir } from '../../fakes/token-fixtures.js';

const USER = 'alice@example.com';
let idp: MockIdp | undefined;
const servers: Server[] = [];

afterEach(async () => {
  await idp?.close();
  idp = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

function clientFor(tokenUrl: string, options: OAuthClientOptions = {}, secret = CLIENT_SECRET) {
  return createOAuthClient({ tokenUrl, clientId: CLIENT_ID, clientSecret: new Secret(secret), scope: 'mail' }, options);
}

/** Runs `call` and returns the ProxyError it rejects with. */
async function failure(call: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as Error;
}

/** A scripted token endpoint for what the mock IdP does not do. */
async function scripted(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => req.resume().on('end', () => handler(req, res)));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
}

describe('oauth client against the mock identity provider', () => {
  it('refreshes, and keeps a rotated refresh token', async () => {
    idp = await startMockIdp({ rotateRefreshTokens: true, accessTokenLifetimeSec: 120 });
    const rt = idp.issueRefreshToken(USER);
    const before = Date.now();
    const grant = await clientFor(idp.tokenUrl).refreshTokenGrant(new Secret(rt), signal());
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
    expect(grant.expiresAt).toBeGreaterThanOrEqual(before + 120_000);
    expect(grant.expiresAt).toBeLessThan(before + 125_000);
    expect(grant.refreshToken?.reveal()).toMatch(/^rt_/);
    expect(grant.refreshToken?.reveal()).not.toBe(rt);
  });

  it('authenticates with client_secret_basic when asked', async () => {
    idp = await startMockIdp();
    const grant = await clientFor(idp.tokenUrl, { clientAuthMethod: 'client_secret_basic' }).clientCredentialsGrant(signal());
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(CLIENT_ID);
  });

  it('runs the password grant', async () => {
    idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }] });
    const grant = await clientFor(idp.tokenUrl).passwordGrant(USER, new Secret('pw'), signal());
    expect(grant.refreshToken).toBeDefined();
    const err = await failure(clientFor(idp.tokenUrl).passwordGrant(USER, new Secret('bad'), signal()), 'needs_authorization');
    expect(oauthErrorCode(err)).toBe('invalid_grant');
  });

  it('assumes one hour when expires_in is missing', async () => {
    idp = await startMockIdp({ omitExpiresIn: true });
    const before = Date.now();
    const grant = await clientFor(idp.tokenUrl).clientCredentialsGrant(signal());
    expect(grant.expiresAt! - before).toBeGreaterThanOrEqual(3_600_000 - 5);
    expect(grant.expiresAt! - before).toBeLessThan(3_605_000);
  });

  it('classifies invalid_grant as needs_authorization, naming the code but no token', async () => {
    idp = await startMockIdp();
    const rt = idp.issueRefreshToken(USER);
    idp.revoke(rt);
    const err = await failure(clientFor(idp.tokenUrl).refreshTokenGrant(new Secret(rt), signal()), 'needs_authorization');
    expect(err.message).toContain('invalid_grant');
    expect(err.message).toMatch(/authorized again/);
    expect(err.message).not.toContain(rt);
    expect(oauthErrorCode(err)).toBe('invalid_grant');
  });

  it('classifies invalid_client (401 with a challenge) as needs_authorization', async () => {
    idp = await startMockIdp();
    const client = clientFor(idp.tokenUrl, { clientAuthMethod: 'client_secret_basic' }, 'wrong-secret');
    const err = await failure(client.clientCredentialsGrant(signal()), 'needs_authorization');
    expect(err.message).toContain('invalid_client');
    expect(err.message).toContain('client_secret');
    expect(err.message).not.toContain('wrong-secret');
  });

  const temporary: [string, 'http500' | 'html' | 'drop', RegExp][] = [
    ['HTTP 500', 'http500', /HTTP 500/],
    ['an HTML page', 'html', /not a token response/],
    ['a dropped connection', 'drop', /cannot reach/],
  ];
  for (const [what, mode, message] of temporary) {
    it(`classifies ${what} as idp_unavailable`, async () => {
      idp = await startMockIdp();
      idp.failMode = mode;
      const rt = idp.issueRefreshToken(USER);
      const err = await failure(clientFor(idp.tokenUrl).refreshTokenGrant(new Secret(rt), signal()), 'idp_unavailable');
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain(rt);
    });
  }

  it('classifies a hanging endpoint as idp_unavailable after the timeout', async () => {
    idp = await startMockIdp();
    idp.failMode = 'hang';
    const started = Date.now();
    const err = await failure(clientFor(idp.tokenUrl, { timeoutMs: 200 }).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toMatch(/did not answer within 0.2 s/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('reports the caller aborting as aborted, not as an IdP failure', async () => {
    idp = await startMockIdp();
    idp.failMode = 'hang';
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await failure(clientFor(idp.tokenUrl).clientCredentialsGrant(controller.signal), 'aborted');
  });

  it('classifies a refused connection as idp_unavailable', async () => {
    idp = await startMockIdp();
    const url = idp.tokenUrl;
    await idp.close();
    idp = undefined;
    const err = await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe('oauth client against scripted endpoints', () => {
  it('treats 429 as idp_unavailable even with an OAuth error body', async () => {
    const url = await scripted((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
    });
    const err = await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toMatch(/429/);
  });

  it('treats a truncated body as idp_unavailable', async () => {
    const url = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"access_token":"at_secret_value","tok');
      setTimeout(() => res.destroy(), 20);
    });
    const err = await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toMatch(/sent a truncated response/);
    expect(err.message).not.toContain('at_secret_value');
  });

  it('treats a 400 HTML page and temporarily_unavailable as idp_unavailable', async () => {
    let html = true;
    const url = await scripted((_req, res) => {
      if (html) res.writeHead(400, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
      else res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable","error_description":"busy\\nTrace ID: x"}');
    });
    await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    html = false;
    const err = await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toContain('temporarily_unavailable: busy');
    expect(err.message).not.toContain('Trace ID');
  });

  it('treats JSON without an access_token as idp_unavailable and never echoes the body', async () => {
    const url = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"refresh_token":"rt_do_not_print","token_type":"Bearer"}');
    });
    const err = await failure(clientFor(url).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain('rt_do_not_print');
    expect(String((err.cause as Error).message)).not.toContain('rt_do_not_print');
  });

  it('ignores an id_token and a missing token_type', async () => {
    const url = await scripted((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"at_1","id_token":"not.a.jwt","expires_in":60}');
    });
    const grant = await clientFor(url).clientCredentialsGrant(signal());
    expect(grant.accessToken.reveal()).toBe('at_1');
  });

  it('refuses plain http to a host that is not loopback', () => {
    expect(() => clientFor('http://idp.example.com/token')).toThrow(/must be https/);
  });
});

describe('oauth client over https with an extra CA file', () => {
  it('trusts the configured CA and refuses without it', async () => {
    const dir = await tempDir();
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      req.resume().on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"at_tls","token_type":"Bearer","expires_in":60}');
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const tokenUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
    const base = { tokenUrl, clientId: CLIENT_ID, clientSecret: new Secret(CLIENT_SECRET) };
    const trusted = await createOAuthClient({ ...base, caFile: cert }).clientCredentialsGrant(signal());
    expect(trusted.accessToken.reveal()).toBe('at_tls');
    const err = await failure(createOAuthClient(base).clientCredentialsGrant(signal()), 'idp_unavailable');
    expect(err.message).toMatch(/certificate/i);
    await failure(createOAuthClient({ ...base, caFile: join(dir, 'missing.pem') }).clientCredentialsGrant(signal()), 'config_invalid');
  });
});
