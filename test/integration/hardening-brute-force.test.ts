import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { LOCAL_PASSWORD, USER, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Brute force through the built proxy (issue 8, point 2): failures from one address are
 * answered later and later, then refused for a while, even with the right password; the right
 * password from another address (127.0.0.2) is unaffected; `auth.lockout` is logged and the
 * metrics count it. The throttle is shortened through the config's `login_throttle`.
 */

let up: Upstreams;
let run: ProxyRun;
let adminPort: number;

beforeAll(async () => {
  up = await startUpstreams();
  const { dir, configPath } = writeProxyConfig(up, {
    extraYaml: `
login_throttle: { free_failures: 2, delay: 0.3, max_delay: 1.2, lockout_after: 6, lockout: 60, window: 60 }
admin: { listen: 127.0.0.1:0 }
`,
  });
  run = await startProxy(configPath, dir);
  adminPort = Number((await run.waitForEvent('admin.start')).port);
});

afterAll(async () => {
  await run.stop();
  await up.close();
});

const login = (password: string) => `LOGIN ${USER} {${Buffer.byteLength(password)}+}\r\n${password}`;

async function timedLogin(c: WireClient, tag: string, password: string): Promise<{ reply: string; ms: number }> {
  const started = performance.now();
  const reply = (await c.command(tag, login(password))).at(-1) ?? '';
  return { reply, ms: performance.now() - started };
}

describe('brute force through the built proxy', () => {
  it('delays failures more and more, then refuses the address even with the right password', async () => {
    const c = await WireClient.connect({ port: run.port });
    await c.readLine();
    const answers: { reply: string; ms: number }[] = [];
    for (let i = 0; i < 6; i++) answers.push(await timedLogin(c, `f${i}`, `wrong-${i}`));
    for (const a of answers) expect(a.reply).toMatch(/^f\d NO \[AUTHENTICATIONFAILED\] Invalid credentials$/);
    // Two free failures, then 0.3, 0.6, 1.2 and 1.2 s (the cap).
    const ms = answers.map((a) => a.ms);
    expect(ms[0]).toBeLessThan(250);
    expect(ms[1]).toBeLessThan(250);
    expect(ms[2]).toBeGreaterThanOrEqual(280);
    expect(ms[3]).toBeGreaterThanOrEqual(580);
    expect(ms[4]).toBeGreaterThanOrEqual(1180);
    expect(ms[5]).toBeGreaterThanOrEqual(1180);
    // Locked out: the right password gets the same answer as a wrong one, at once.
    const locked = await timedLogin(c, 'r1', LOCAL_PASSWORD);
    expect(locked.reply).toBe('r1 NO [AUTHENTICATIONFAILED] Invalid credentials');
    expect(locked.ms).toBeLessThan(250);
    c.close();
    const again = await WireClient.connect({ port: run.port });
    await again.readLine();
    expect((await timedLogin(again, 'r2', LOCAL_PASSWORD)).reply).toMatch(/^r2 NO \[AUTHENTICATIONFAILED\]/);
    again.close();
    expect(up.imap.stats.connections).toBe(0);
  });

  it('lets the right password in from another address meanwhile', async () => {
    const c = await WireClient.connect({ port: run.port, localAddress: '127.0.0.2' });
    await c.readLine();
    const { reply, ms } = await timedLogin(c, 'o1', LOCAL_PASSWORD);
    expect(reply).toMatch(/^o1 OK \[CAPABILITY /);
    expect(ms).toBeLessThan(5000);
    c.close();
    expect(up.imap.stats.connections).toBe(1);
  });

  it('logs auth.lockout once, for that address, and the metrics count failures and the lockout', async () => {
    const lockouts = await run.waitForEvents('auth.lockout', 1);
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]).toMatchObject({ level: 40, client: '127.0.0.1', protocol: 'imap', seconds: 60 });
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('oauth_mail_proxy_login_failures_total{protocol="imap",throttle="immediate"}')).toBe(2);
    expect(value('oauth_mail_proxy_login_failures_total{protocol="imap",throttle="delayed"}')).toBe(4);
    expect(value('oauth_mail_proxy_login_failures_total{protocol="imap",throttle="locked_out"}')).toBe(2);
    expect(value('oauth_mail_proxy_login_lockouts_total{protocol="imap"}')).toBe(1);
    expect(value('oauth_mail_proxy_login_locked_out_addresses')).toBe(1);
  });
});
