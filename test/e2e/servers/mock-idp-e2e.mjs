#!/usr/bin/env node
// The project's mock identity provider (dist/demo/mock-idp.js, the same one the demo and the
// integration tests use), run standalone for the end-to-end servers, plus a small control
// listener on a second loopback port so that a test can change the token lifetime, mint and
// revoke tokens and count requests while Dovecot keeps introspecting against the same state.
//
//   node test/e2e/servers/mock-idp-e2e.mjs --port 19800 --control-port 19801 \
//     --user alice@example.com:pw --client proxy:proxy-secret --lifetime 3600 --rotate
//
// Prints one JSON line with its URLs, then serves until SIGINT or SIGTERM.
// Plain JavaScript on purpose: it runs from dist/ without a TypeScript step.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const { startMockIdp } = await import(resolve(repo, 'dist/demo/mock-idp.js'));

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'control-port': { type: 'string', default: '0' },
    user: { type: 'string', multiple: true, default: [] },
    client: { type: 'string', multiple: true, default: [] },
    lifetime: { type: 'string', default: '3600' },
    rotate: { type: 'boolean', default: false },
  },
});

function pair(value) {
  const colon = value.indexOf(':');
  return colon < 0 ? [value, undefined] : [value.slice(0, colon), value.slice(colon + 1)];
}

const users = values.user.map((u) => {
  const [username, password] = pair(u);
  return { username, password: password ?? '' };
});
const clients = values.client.map((c) => {
  const [clientId, clientSecret] = pair(c);
  return { clientId, clientSecret };
});

const idp = await startMockIdp({
  host: values.host,
  port: Number(values.port),
  users,
  ...(clients.length > 0 ? { clients } : {}),
  accessTokenLifetimeSec: Number(values.lifetime),
  rotateRefreshTokens: values.rotate,
});

/** The control API: JSON in, JSON out, loopback only, for tests. */
const routes = {
  'GET /health': () => ({ ok: true }),
  /** Every request the IdP saw since the last reset (no secrets in them). */
  'GET /requests': () => ({ requests: idp.requests }),
  'POST /reset-requests': () => {
    idp.resetRequests();
    return { ok: true };
  },
  'GET /settings': () => settings(),
  'POST /settings': (body) => {
    if (body.accessTokenLifetimeSec !== undefined) idp.accessTokenLifetimeSec = Number(body.accessTokenLifetimeSec);
    if (body.rotateRefreshTokens !== undefined) idp.rotateRefreshTokens = Boolean(body.rotateRefreshTokens);
    return settings();
  },
  'POST /refresh-token': (body) => ({ refresh_token: idp.issueRefreshToken(String(body.username)) }),
  'POST /access-token': (body) => ({
    access_token: idp.issueAccessToken(String(body.username), body.lifetime === undefined ? undefined : Number(body.lifetime)),
  }),
  'POST /revoke': (body) => {
    if (body.username !== undefined) return { revoked: idp.revokeUser(String(body.username)) };
    return { revoked: idp.revoke(String(body.token)) ? 1 : 0 };
  },
  'POST /validate': (body) => ({ username: idp.validateAccessToken(String(body.token)) ?? null }),
};

function settings() {
  return { accessTokenLifetimeSec: idp.accessTokenLifetimeSec, rotateRefreshTokens: idp.rotateRefreshTokens };
}

const control = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > 65536) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const route = routes[`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`];
    let status = 200;
    let body;
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      body = route ? route(text ? JSON.parse(text) : {}) : ((status = 404), { error: 'no such control endpoint' });
    } catch (err) {
      status = 400;
      body = { error: err instanceof Error ? err.message : String(err) };
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
});

await new Promise((ok, fail) => {
  control.once('error', fail);
  control.listen(Number(values['control-port']), values.host, ok);
});

const controlUrl = `http://${values.host}:${control.address().port}`;
const { url, tokenUrl, introspectionUrl, deviceAuthorizationUrl } = idp;
process.stdout.write(`${JSON.stringify({ url, tokenUrl, introspectionUrl, deviceAuthorizationUrl, controlUrl })}\n`);

const stop = () => {
  control.close();
  void idp.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
