import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ImapFlow } from 'imapflow';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage } from '../../src/demo/imap-server.js';
import { parsePrometheusText } from '../fakes/prometheus.js';
import { LOCAL_PASSWORD, TOKEN_PATTERN, USER, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * The first consent of a headless install, in a real browser: Debian's chromium (driven by
 * playwright-core, which never downloads a browser of its own) opens the built proxy's status
 * page, clicks Sign in, approves on the mock identity provider's consent page, and comes back to
 * a row that says ok; then an IMAP client logs in through the proxy with that account.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const DOCS_SCREENSHOT = resolve(import.meta.dirname, '../../docs/status-page.png');

let up: Upstreams;
let proxy: ProxyRun;
let browser: BrowserContext;
let profile: string;
let adminUrl: string;

beforeAll(async () => {
  up = await startUpstreams({ users: [{ username: USER, password: 'idp-pw' }] });
  up.imap.deliver(USER, buildMessage({ subject: 'after the first consent' }));
  const { dir, configPath } = writeProxyConfig(up, { flow: 'authorization_code', extraYaml: 'admin: { listen: 127.0.0.1:0 }' });
  proxy = await startProxy(configPath, dir);
  adminUrl = `http://127.0.0.1:${Number((await proxy.waitForEvent('admin.start')).port)}/`;
  profile = mkdtempSync(join(tmpdir(), 'omp-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 300 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await proxy?.stop();
  await up?.close();
});

describe.skipIf(!existsSync(CHROMIUM) && process.env.CI === undefined)('status page in a browser', () => {
  it('Sign in, approve at the identity provider, back to "ok", then an IMAP login through the proxy', async () => {
    const page = await browser.newPage();
    await page.goto(adminUrl);
    const row = page.locator(`tr[data-account="${USER}"]`);
    await expect.poll(() => row.locator('.badge').textContent()).toBe('needs authorization');
    expect(await row.locator('[data-field="lastError"]').textContent()).toMatch(/has no refresh token yet/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-needs-authorization.png') });
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') await page.screenshot({ path: DOCS_SCREENSHOT });

    await row.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((url) => url.href.startsWith(up.idp.authorizeUrl));
    expect(await page.locator('h1').textContent()).toMatch(/Sign in to the mock identity provider/);
    await page.getByRole('button', { name: 'Approve' }).click();

    await page.waitForURL(adminUrl);
    await expect.poll(() => row.locator('.badge').textContent()).toBe('ok');
    expect(await row.locator('[data-field="expires"]').textContent()).toMatch(/^in (59|60) min$/);
    await proxy.waitForEvent('token.authorized');

    const client = new ImapFlow({ host: '127.0.0.1', port: proxy.port, secure: false, auth: { user: USER, pass: LOCAL_PASSWORD }, logger: false });
    await client.connect();
    const mailbox = await client.mailboxOpen('INBOX');
    expect(mailbox.exists).toBe(1);
    // The page's script picks up the live session by itself.
    await expect.poll(() => row.locator('[data-field="activeSessions"]').textContent(), { timeout: 10_000 }).toBe('1');
    await page.screenshot({ path: join(ARTIFACTS, 'status-page-ok.png') });
    await client.logout();

    await proxy.waitForEvent('session.end');
    const metrics = parsePrometheusText(await (await fetch(`${adminUrl}metrics`)).text());
    expect(metrics.sum('oauth_mail_proxy_sessions_total', { protocol: 'imap', outcome: 'relayed' })).toBe(1);
    expect(metrics.sum('oauth_mail_proxy_relayed_bytes_total', { protocol: 'imap', direction: 'from_server' })).toBeGreaterThan(100);
    expect(metrics.sum('oauth_mail_proxy_upstream_login_duration_seconds_count', { protocol: 'imap', outcome: 'ok' })).toBe(1);
    expect(metrics.sum('oauth_mail_proxy_accounts_needing_authorization')).toBe(0);
    expect(proxy.logs.join('\n')).not.toMatch(TOKEN_PATTERN);
    await page.close();
  });
});
