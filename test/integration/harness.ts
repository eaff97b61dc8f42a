import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { startMockIdp, type MockIdp, type MockIdpOptions } from '../../src/demo/mock-idp.js';
import { startDemoImapServer, type DemoImapServer } from '../../src/demo/imap-server.js';
import { startDemoPop3Server, type DemoPop3Server, type DemoPop3ServerOptions } from '../../src/demo/pop3-server.js';
import { openFileStore } from '../../src/store/file-store.js';
import type { StoredTokens } from '../../src/store/token-store.js';
import { getTestCertificates, type TestCertificates } from '../fakes/certs.js';
import { watchProxy } from './secret-scan.js';

/**
 * Runs the BUILT proxy (dist/cli.js) as a child process against an in-process mock identity
 * provider and demo IMAP server, over real sockets. Every log line the proxy prints is kept
 * so that tests can assert on events and scan for leaked secrets.
 */

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');
export const USER = 'alice@example.com';
export const LOCAL_PASSWORD = 'local "pass" \\ word';
export const CLIENT_SECRET = 'proxy-secret';

export interface Upstreams {
  idp: MockIdp;
  imap: DemoImapServer;
  /** Started when startUpstreams is given POP3 options; it serves the IMAP server's mailboxes. */
  pop3?: DemoPop3Server | undefined;
  certs: TestCertificates;
  /** Every access token the upstream IMAP server was shown. */
  seenTokens: string[];
  close(): Promise<void>;
}

/** POP3 upstream options: TLS mode and how a refused token is answered. */
export type Pop3UpstreamOptions = Pick<Partial<DemoPop3ServerOptions>, 'refusal'> & { tls?: 'implicit' | 'starttls' };

export async function startUpstreams(idpOptions: MockIdpOptions = {}, imapTls: 'implicit' | 'starttls' = 'implicit', pop3Options?: Pop3UpstreamOptions): Promise<Upstreams> {
  const certs = getTestCertificates();
  const idp = await startMockIdp(idpOptions);
  const seenTokens: string[] = [];
  const imap = await startDemoImapServer({
    tls: imapTls,
    cert: certs.certPem,
    key: certs.keyPem,
    validateToken: (username, token) => {
      seenTokens.push(token);
      return idp.validateAccessToken(token) === username;
    },
  });
  const pop3 = pop3Options && await startDemoPop3Server({
    tls: pop3Options.tls ?? 'implicit',
    cert: certs.certPem,
    key: certs.keyPem,
    store: imap.store,
    refusal: pop3Options.refusal,
    validateToken: (username, token) => {
      seenTokens.push(token);
      return idp.validateAccessToken(token) === username;
    },
  });
  return {
    idp, imap, pop3, certs, seenTokens,
    async close() {
      await pop3?.close();
      await imap.close();
      await idp.close();
    },
  };
}

export interface ProxyOptions {
  clientTls?: 'none' | 'starttls' | 'implicit';
  refreshToken?: string;
  /** Extra YAML appended to the listener entry. */
  listenerExtra?: string;
  imapTls?: 'implicit' | 'starttls';
  sasl?: 'xoauth2' | 'oauthbearer';
  /** The listener's protocol (default imap); pop3 needs startUpstreams with POP3 options. */
  protocol?: 'imap' | 'pop3';
  /** The account's flow (default refresh_token); the interactive flows start without a refresh token. */
  flow?: 'refresh_token' | 'device_code' | 'authorization_code';
  /** Extra top-level YAML (admin, hooks). */
  extraYaml?: string;
  /** Extra YAML lines for the provider `corp` (indented four spaces), e.g. token_timeout. */
  providerExtra?: string;
}

export interface ProxyRun {
  dir: string;
  configPath: string;
  storePath: string;
  port: number;
  logs: string[];
  child: ChildProcess;
  /** Resolves with the first log record whose event matches. */
  waitForEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  events(event: string): Record<string, unknown>[];
  /** Waits until at least `count` records of `event` were logged (log lines arrive asynchronously). */
  waitForEvents(event: string, count: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  stop(): Promise<number | null>;
}

export function writeProxyConfig(up: Upstreams, options: ProxyOptions = {}): { dir: string; configPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'omp-it-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(join(dir, 'alice.rt'), `${options.refreshToken ?? up.idp.issueRefreshToken(USER)}\n`);
  writeFileSync(join(dir, 'client-secret'), CLIENT_SECRET);
  writeFileSync(join(dir, 'local-password'), LOCAL_PASSWORD);
  writeFileSync(configPath, `
listeners:
  - protocol: ${options.protocol ?? 'imap'}
    listen: 127.0.0.1:0
    tls: ${options.clientTls ?? 'none'}
    cert_file: ${up.certs.certFile}
    key_file: ${up.certs.keyFile}
    idle_timeout: 2
    login_timeout: 10
${options.listenerExtra ?? ''}
providers:
  corp:
    token_url: ${up.idp.tokenUrl}
    authorize_url: ${up.idp.authorizeUrl}
    device_authorization_url: ${up.idp.deviceAuthorizationUrl}
    client_id: proxy
    client_secret_file: ./client-secret
    scope: mail
    ca_file: ${up.certs.caFile}
    sasl_mechanism: ${options.sasl ?? 'xoauth2'}
${options.providerExtra ?? ''}    servers:
      imap: { host: localhost, port: ${up.imap.port}, tls: ${options.imapTls ?? 'implicit'} }
${up.pop3 ? `      pop3: { host: localhost, port: ${up.pop3.port}, tls: ${up.pop3.tls} }\n` : ''}accounts:
  - username: ${USER}
    password_file: ./local-password
    provider: corp
    flow: ${options.flow ?? 'refresh_token'}
${(options.flow ?? 'refresh_token') === 'refresh_token' ? '    refresh_token_file: ./alice.rt\n' : ''}token_store: { path: ./data/tokens.enc, key_file: ./data/tokens.key }
log: { level: debug, format: json }
${options.extraYaml ?? ''}
`);
  return { dir, configPath };
}

/**
 * A `providers:` block for configs written by hand: `corp`, the mock identity provider, with the
 * fake IMAP and POP3 servers over implicit TLS (start them with `{ tls: 'implicit' }` for POP3).
 */
export function corpProviderYaml(up: Upstreams): string {
  return `providers:
  corp:
    token_url: ${up.idp.tokenUrl}
    authorize_url: ${up.idp.authorizeUrl}
    client_id: proxy
    client_secret: ${CLIENT_SECRET}
    scope: mail
    ca_file: ${up.certs.caFile}
    servers:
      imap: { host: localhost, port: ${up.imap.port}, tls: implicit }
      pop3: { host: localhost, port: ${up.pop3!.port}, tls: implicit }
`;
}

/** One `accounts:` entry of `corp` with a local password and a fresh refresh token from the mock IdP. */
export function accountYaml(up: Upstreams, user: string, password: string): string {
  return `  - { username: ${user}, password: '${password.replace(/'/g, "''")}', provider: corp, flow: refresh_token, refresh_token: ${up.idp.issueRefreshToken(user)} }\n`;
}

/** Writes the store before the proxy starts (an expired or revoked access token, say). */
export async function seedStore(dir: string, tokens: Omit<StoredTokens, 'updatedAt'>): Promise<void> {
  const store = await openFileStore({ path: join(dir, 'data/tokens.enc'), keyFile: join(dir, 'data/tokens.key') }, {});
  await store.put(USER, { ...tokens, updatedAt: Date.now() });
  await store.close();
}

export async function readStore(dir: string): Promise<StoredTokens | undefined> {
  const store = await openFileStore({ path: join(dir, 'data/tokens.enc'), keyFile: join(dir, 'data/tokens.key') }, {});
  try {
    return await store.get(USER);
  } finally {
    await store.close();
  }
}

export async function startProxy(configPath: string, dir: string): Promise<ProxyRun> {
  const child = spawn(process.execPath, [CLI, 'serve', '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  // After the file's tests, every line is searched for every secret of this config (secret-scan.ts).
  watchProxy(logs, configPath);
  const records: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (r: Record<string, unknown>) => void }[] = [];
  const onLine = (line: string) => {
    logs.push(line);
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    records.push(record);
    for (const w of waiters.filter((x) => x.event === record.event)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(record);
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const waitForEvent = (event: string, timeoutMs = 15_000) => {
    const seen = records.find((r) => r.event === event);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolveWait, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} log event within ${timeoutMs} ms; logs:\n${logs.join('\n')}`)), timeoutMs);
      waiters.push({ event, resolve: (r) => { clearTimeout(timer); resolveWait(r); } });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`proxy exited (${code}) before ${event}; logs:\n${logs.join('\n')}`)); });
    });
  };
  const started = await waitForEvent('listener.start');
  return {
    dir, configPath, storePath: join(dir, 'data/tokens.enc'), port: Number(started.port), logs, child, waitForEvent,
    events: (event) => records.filter((r) => r.event === event),
    async waitForEvents(event, count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = records.filter((r) => r.event === event);
        if (found.length >= count) return found;
        if (Date.now() > deadline) throw new Error(`only ${found.length} of ${count} ${event} events; logs:\n${logs.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      // Already gone (exited, or killed by a signal): there will be no second 'exit'.
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Tokens issued by the mock identity provider have these shapes. */
export { TOKEN_PATTERN } from './secret-scan.js';
