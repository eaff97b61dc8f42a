import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp, type MockIdp } from '../../src/demo/mock-idp.js';
import { isProxyError } from '../../src/errors.js';
import { createNeedsAuthorizationHook } from '../../src/hooks.js';
import { Secret } from '../../src/secret.js';
import { openFileStore } from '../../src/store/file-store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { createTokenManager } from '../../src/tokens/manager.js';
import { accountFor, captureLogger, tempDir, type CapturedLog } from '../fakes/token-fixtures.js';

/** The needs-authorization hook: once per transition, account and reason only, never in the way. */

const USER = 'alice@example.com';
const TOKEN = /\b(at|rt)_[A-Za-z0-9_-]{20,}/;
let idp: MockIdp | undefined;
let store: TokenStore | undefined;
const servers: Server[] = [];

afterEach(async () => {
  await idp?.close();
  await store?.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function webhook(status: number): Promise<{ url: string; bodies: Record<string, unknown>[] }> {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(status).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

async function managerWithHook(target: Parameters<typeof createNeedsAuthorizationHook>[0], logs: CapturedLog) {
  idp = await startMockIdp();
  const dir = await tempDir();
  store = await openFileStore({ path: join(dir, 'tokens.enc'), keyFile: join(dir, 'tokens.key') }, {});
  const rt = idp.issueRefreshToken(USER);
  const hook = createNeedsAuthorizationHook(target, logs.log);
  const tokens = createTokenManager({ accounts: [accountFor(idp.tokenUrl, { refreshTokenSeed: new Secret(rt) })], store, log: logs.log, events: hook });
  return { tokens, hook, rt, dir };
}

const login = (tokens: ReturnType<typeof createTokenManager>) => tokens.getToken(USER, { signal: AbortSignal.timeout(5000), force: true }).then(() => 'ok', (e: unknown) => (isProxyError(e) ? e.code : 'other'));

describe('needs-authorization hook', () => {
  it('runs the command and posts the webhook once per transition, with account and reason, never a token', async () => {
    const logs = captureLogger();
    const out = join(await tempDir(), 'calls.txt');
    const hookSite = await webhook(204);
    const command = ['/bin/sh', '-c', `printf '%s|%s|%s\\n' "$OAUTH_MAIL_PROXY_EVENT" "$OAUTH_MAIL_PROXY_ACCOUNT" "$OAUTH_MAIL_PROXY_REASON" >> ${out}`];
    const { tokens, hook, rt } = await managerWithHook({ command, url: hookSite.url }, logs);
    expect(await login(tokens)).toBe('ok');
    idp!.revoke(rt);
    expect(await login(tokens)).toBe('needs_authorization');
    expect(await login(tokens)).toBe('needs_authorization'); // fails fast, no second call
    expect(await login(tokens)).toBe('needs_authorization');
    await hook.settled();
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^needs_authorization\|alice@example\.com\|.*invalid_grant/);
    expect(hookSite.bodies).toHaveLength(1);
    expect(hookSite.bodies[0]).toMatchObject({ event: 'needs_authorization', account: USER, flow: 'refresh_token', reason: expect.stringMatching(/invalid_grant/) });
    expect(JSON.stringify(hookSite.bodies) + lines.join('')).not.toMatch(TOKEN);

    // A new grant, then the grant is gone again: a second transition, a second call.
    const fresh = idp!.issueRefreshToken(USER);
    await tokens.authorize(USER, { accessToken: new Secret(idp!.issueAccessToken(USER)), refreshToken: new Secret(fresh) });
    expect(await login(tokens)).toBe('ok');
    idp!.revoke(fresh);
    expect(await login(tokens)).toBe('needs_authorization');
    await hook.settled();
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(hookSite.bodies).toHaveLength(2);
    await tokens.stop();
  });

  it('a failing hook is logged and holds up nothing', async () => {
    const logs = captureLogger();
    const failing = await webhook(500);
    const { tokens, hook, rt } = await managerWithHook({ command: ['/bin/sh', '-c', 'echo broken >&2; exit 3'], url: failing.url }, logs);
    idp!.revoke(rt);
    const started = Date.now();
    expect(await login(tokens)).toBe('needs_authorization');
    expect(Date.now() - started).toBeLessThan(2000);
    await hook.settled();
    const failures = logs.events('hook.failed');
    expect(failures.map((f) => f.hook).sort()).toEqual(['command', 'webhook']);
    expect(failures.find((f) => f.hook === 'command')?.error).toMatch(/exit 3\): broken/);
    expect(failures.find((f) => f.hook === 'webhook')?.error).toMatch(/HTTP 500/);
    await tokens.stop();
  });
});
