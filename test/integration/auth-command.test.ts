import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, TOKEN_PATTERN, USER, readStore, runCli, startProxy, startUpstreams, writeProxyConfig, type Upstreams } from './harness.js';

/** `oauth-mail-proxy auth ACCOUNT`, the built CLI, against the mock identity provider. */

let up: Upstreams;

beforeAll(async () => {
  up = await startUpstreams({ users: [{ username: USER, password: 'idp-pw' }], deviceCodeIntervalSec: 1 });
});

afterAll(async () => {
  await up.close();
});

interface AuthRun {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  /** Resolves with the first match of `pattern` in stdout. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exit(): Promise<number | null>;
}

function startAuth(args: string[]): AuthRun {
  const child = spawn(process.execPath, [CLI, 'auth', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    waiters.splice(0).forEach((w) => w());
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    output: () => out,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in:\n${out}`)), 15_000);
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else waiters.push(check);
        };
        check();
      }),
    exit: () => exited,
  };
}

async function approveInBrowser(authorizeUrl: string): Promise<string> {
  const form = new URLSearchParams(new URL(authorizeUrl).searchParams);
  form.set('decision', 'approve');
  form.set('username', USER);
  const res = await fetch(up.idp.authorizeUrl, { method: 'POST', body: form, redirect: 'manual' });
  expect(res.status).toBe(302);
  return res.headers.get('location')!;
}

async function expectStoredGrant(dir: string): Promise<void> {
  const stored = await readStore(dir);
  expect(stored?.refreshToken && up.idp.isRefreshTokenActive(stored.refreshToken)).toBe(true);
  expect(stored?.needsAuthorization).toBeUndefined();
}

describe('oauth-mail-proxy auth', () => {
  it('device code: prints the URL and code, waits for approval, stores the tokens, exits 0', async () => {
    const { dir, configPath } = writeProxyConfig(up, { flow: 'device_code' });
    const run = startAuth([USER, '-c', configPath]);
    const [, url] = await run.waitFor(/open\n\n {4}(\S+)\n/);
    expect(url).toBe(up.idp.verificationUrl);
    const [, code] = await run.waitFor(/enter the code\n\n {4}([B-Z]{4}-[B-Z]{4})\n/);
    await run.waitFor(/Waiting for the sign-in/);
    expect(up.idp.approveDevice(code!, USER)).toBe(true);
    expect(await run.exit()).toBe(0);
    expect(run.output()).toMatch(/Signed in: the tokens of alice@example\.com are stored/);
    expect(run.output()).not.toMatch(TOKEN_PATTERN);
    await expectStoredGrant(dir);
    // The stored grant works: `token` prints an access token the server accepts.
    const token = await runCli(['token', USER, '-c', configPath]);
    expect(token.code).toBe(0);
    expect(up.idp.validateAccessToken(token.stdout.trim())).toBe(USER);
  });

  it('device code: a denial ends it with exit 1 and a plain reason', async () => {
    const { configPath } = writeProxyConfig(up, { flow: 'device_code' });
    const run = startAuth([USER, '-c', configPath]);
    const [, code] = await run.waitFor(/enter the code\n\n {4}([B-Z]{4}-[B-Z]{4})\n/);
    up.idp.denyDevice(code!);
    expect(await run.exit()).toBe(1);
    expect(run.output()).toMatch(/declined/);
  });

  it('browser: prints the sign-in link, takes the redirect on its own loopback port, stores the tokens', async () => {
    const { dir, configPath } = writeProxyConfig(up, { flow: 'authorization_code' });
    const run = startAuth([USER, '-c', configPath]);
    const [, link] = await run.waitFor(/open this link in a browser:\n\n {4}(\S+)\n/);
    const authorize = new URL(link!);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/callback$/);
    const callback = await approveInBrowser(link!);
    // A forged answer first: refused, and the sign-in goes on.
    const forged = await fetch(callback.replace(/state=[^&]+/, 'state=forged'));
    expect(forged.status).toBe(400);
    const page = await fetch(callback);
    expect(await page.text()).toMatch(/Signed in/);
    expect(await run.exit()).toBe(0);
    await expectStoredGrant(dir);
  });

  it('browser on another machine: the pasted address completes the sign-in', async () => {
    const { dir, configPath } = writeProxyConfig(up, { flow: 'authorization_code' });
    const run = startAuth([USER, '-c', configPath, '--method', 'browser']);
    const [, link] = await run.waitFor(/open this link in a browser:\n\n {4}(\S+)\n/);
    await run.waitFor(/Waiting for the sign-in/);
    run.child.stdin.write(`${await approveInBrowser(link!)}\n`);
    expect(await run.exit()).toBe(0);
    await expectStoredGrant(dir);
  });

  it('refuses while a proxy with the same config runs, pointing to its status page', async () => {
    const port = await freePort();
    const { dir, configPath } = writeProxyConfig(up, { flow: 'device_code', extraYaml: `admin: { listen: 127.0.0.1:${port} }` });
    const proxy = await startProxy(configPath, dir);
    try {
      const { code, stderr } = await runCli(['auth', USER, '-c', configPath]);
      expect(code).toBe(1);
      expect(stderr).toMatch(new RegExp(`a proxy is running with this config \\(admin listener http://127\\.0\\.0\\.1:${port}/\\): use Sign in on its status page`));
    } finally {
      await proxy.stop();
    }
  });

  it('explains which accounts cannot sign in interactively', async () => {
    const { configPath } = writeProxyConfig(up, { flow: 'device_code' });
    const wrong = await runCli(['auth', 'nobody@example.com', '-c', configPath]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/no account "nobody@example\.com"/);
    expect((await runCli(['auth', USER, '-c', configPath, '--method', 'carrier-pigeon'])).stderr).toMatch(/--method must be browser or device/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
