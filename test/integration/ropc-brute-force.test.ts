import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { USER, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * A flow "password" (ROPC) account through the built proxy: the identity provider judges the
 * password, and each of its refusals counts for the login throttle like a wrong local password.
 * Guesses at the real password are slowed and then refused for the address, without another
 * request to the identity provider once it is locked out.
 */

const REAL_PASSWORD = 'the real password';

let up: Upstreams;
let run: ProxyRun;

beforeAll(async () => {
  up = await startUpstreams({ users: [{ username: USER, password: REAL_PASSWORD }] });
  const { dir, configPath } = writeProxyConfig(up, {
    extraYaml: 'login_throttle: { free_failures: 2, delay: 0.2, max_delay: 0.4, lockout_after: 5, lockout: 60, window: 60 }\n',
  });
  // The harness writes a refresh_token account; this one is ROPC, with no local password.
  const ropc = readFileSync(configPath, 'utf8').replace(/accounts:\n[\s\S]*?(?=token_store:)/, `accounts:\n  - { username: ${USER}, provider: corp, flow: password }\n`);
  writeFileSync(configPath, ropc);
  run = await startProxy(configPath, dir);
});

afterAll(async () => {
  await run.stop();
  await up.close();
});

const login = (password: string) => `LOGIN ${USER} {${Buffer.byteLength(password)}+}\r\n${password}`;

describe('guessing the real password of a flow "password" account', () => {
  it('is slowed, then refused for the address, and the identity provider is asked no more', async () => {
    const c = await WireClient.connect({ port: run.port });
    await c.readLine();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      expect((await c.command(`g${i}`, login(`guess ${i}`))).at(-1)).toMatch(new RegExp(`^g${i} NO \\[AUTHENTICATIONFAILED\\]`));
      times.push(performance.now() - started);
    }
    // Two free failures, then the throttle's delays (0.2, 0.4, 0.4 s).
    expect(times[2]).toBeGreaterThanOrEqual(180);
    expect(times[3]).toBeGreaterThanOrEqual(380);
    const asked = up.idp.count('token', 'password');
    expect(asked).toBe(5);
    // Locked out: even the real password is refused, and never reaches the identity provider.
    expect((await c.command('r1', login(REAL_PASSWORD))).at(-1)).toMatch(/^r1 NO \[AUTHENTICATIONFAILED\]/);
    expect(up.idp.count('token', 'password')).toBe(asked);
    c.close();
    const lockout = await run.waitForEvent('auth.lockout');
    expect(lockout.client).toBe('127.0.0.1');
    expect(run.events('auth.fail').filter((e) => e.method === 'identity provider')).toHaveLength(5);
    expect(run.logs.join('\n')).not.toMatch(/guess \d|the real password/);
  });

  it('lets the real password in from another address', async () => {
    const c = await WireClient.connect({ port: run.port, localAddress: '127.0.0.2' });
    await c.readLine();
    expect((await c.command('a1', login(REAL_PASSWORD))).at(-1)).toMatch(/^a1 OK/);
    c.close();
  });
});
