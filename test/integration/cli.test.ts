import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyScryptHash } from '../../src/accounts/password.js';
import { parseConfig } from '../../src/config/load.js';
import { buildMessage } from '../../src/demo/imap-server.js';
import { Secret } from '../../src/secret.js';
import { CLI, TOKEN_PATTERN, USER, runCli, startUpstreams, writeProxyConfig, type Upstreams } from './harness.js';

const exec = promisify(execFile);

let up: Upstreams;

beforeAll(async () => {
  up = await startUpstreams();
  up.imap.deliver(USER, buildMessage({ subject: 'cli' }));
});

afterAll(async () => {
  await up.close();
});

describe('the oauth-mail-proxy command', () => {
  it('prints help for every command', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    for (const name of ['serve', 'check', 'auth', 'token', 'hash-password', 'demo']) {
      expect(top.stdout).toContain(name);
      const help = await runCli([name, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: oauth-mail-proxy ${name}`);
    }
    expect((await runCli(['frobnicate'])).code).toBe(2);
  });

  it.each([
    [['token'], /token: missing ACCOUNT/],
    [['token', 'a@example.com', 'b@example.com'], /token: unexpected argument "b@example.com"/],
    [['hash-password', 'extra'], /hash-password: unexpected argument "extra"/],
    [['serve', '--bogus'], /serve: Unknown option '--bogus'/],
    [['check', '-c'], /check: Option '-c, --config <value>' argument missing/],
    [['demo', '--port', 'x'], /demo: --port must be a port number/],
    [['auth', 'a@example.com', '--method', 'carrier-pigeon'], /auth: --method must be browser or device/],
  ])('refuses %j with exit code 2 and the command\'s usage', async (args, message) => {
    const { code, stdout, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr).toContain(`Usage: oauth-mail-proxy ${args[0]}`);
  });

  it('hash-password reads stdin and prints a hash that verifies', async () => {
    const { code, stdout } = await runCli(['hash-password'], 'my local pw\n');
    expect(code).toBe(0);
    const hash = stdout.trim();
    expect(hash).toMatch(/^scrypt\$/);
    expect(await verifyScryptHash(hash, new Secret('my local pw'))).toBe(true);
    expect(await verifyScryptHash(hash, new Secret('my local pW'))).toBe(false);
  });

  it('hash-password on a terminal refuses two different passwords with one message', async () => {
    // The prompt path needs a terminal: python3's pty gives the command one and types the answers.
    const typist = [
      'import os, pty, sys, time',
      'pid, fd = pty.fork()',
      'if pid == 0: os.execv(sys.argv[1], sys.argv[1:])',
      'out = b""',
      'def read(marker=None):',
      '    global out',
      '    end = time.time() + 10',
      '    while (marker is None or marker not in out) and time.time() < end:',
      '        try: chunk = os.read(fd, 1024)',
      '        except OSError: return',
      '        if not chunk: return',
      '        out += chunk',
      'read(b"Password: "); os.write(fd, b"first\\r")',
      'read(b"Again: "); os.write(fd, b"second\\r")',
      'read()',
      '_, status = os.waitpid(pid, 0)',
      'sys.stdout.write(out.decode(errors="replace"))',
      'sys.exit(os.waitstatus_to_exitcode(status))',
    ].join('\n');
    const run = await exec('python3', ['-c', typist, process.execPath, CLI, 'hash-password']).then(() => ({ code: 0, stdout: '' }), (err: { code: number; stdout: string }) => err);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('the two passwords differ');
    expect(run.stdout).not.toContain('empty password');
    expect(run.stdout).not.toMatch(/scrypt\$/);
  });

  it('token ACCOUNT prints a fresh access token the server accepts, and nothing else', async () => {
    const { configPath } = writeProxyConfig(up);
    const { code, stdout, stderr } = await runCli(['token', USER, '-c', configPath]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const token = stdout.trim();
    expect(up.idp.validateAccessToken(token)).toBe(USER);
    expect((await runCli(['token', 'nobody@example.com', '-c', configPath])).code).toBe(1);
  });

  it('check logs in upstream per account and prints a table; a revoked grant fails it', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const { configPath } = writeProxyConfig(up, { refreshToken: rt });
    const ok = await runCli(['check', '-c', configPath]);
    expect(ok.stdout).toMatch(/account\s+flow\s+token\s+imap/);
    expect(ok.stdout).toMatch(new RegExp(`${USER}\\s+refresh_token\\s+ok\\s+ok`));
    expect(ok.code).toBe(0);
    const rt2 = up.idp.issueRefreshToken(USER);
    const bad = writeProxyConfig(up, { refreshToken: rt2 });
    up.idp.revoke(rt2);
    const failed = await runCli(['check', '-c', bad.configPath]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED: .*authoriz/i);
    expect(failed.stdout + failed.stderr).not.toMatch(TOKEN_PATTERN);
  });

  it('serve refuses a config with a mistake, naming the line and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-cli-'));
    writeFileSync(join(dir, 'config.yaml'), 'listeners:\n  - protocol: imap\n    listen: nowhere\n');
    const { code, stderr } = await runCli(['serve', '-c', join(dir, 'config.yaml')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/config\.yaml:3 listeners\[0\]\.listen/);
  });

  it('check refuses a listen address that serve could not bind, naming the line and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-cli-'));
    writeFileSync(join(dir, 'config.yaml'), 'listeners:\n  - protocol: imap\n    listen: 127.0.0.1:99999\n');
    const { code, stderr } = await runCli(['check', '-c', join(dir, 'config.yaml')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/config\.yaml:3 listeners\[0\]\.listen: port 99999 is out of range/);
  });

  it('config.example.yaml is valid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-example-'));
    copyFileSync(resolve(import.meta.dirname, '../../config.example.yaml'), join(dir, 'config.yaml'));
    writeFileSync(join(dir, 'alice.rt'), 'rt');
    const cfg = parseConfig(readFileSync(join(dir, 'config.yaml'), 'utf8'), {
      path: join(dir, 'config.yaml'),
      env: { GOOGLE_CLIENT_SECRET: 'x', BOB_REFRESH_TOKEN: 'y' },
    });
    expect(cfg.accounts.map((a) => a.username)).toEqual(['alice@gmail.com', 'bob@contoso.com']);
  });

  it('demo: the README command starts everything and curl reads the welcome message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-demo-'));
    const child = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--port', '0', '--pop3-port', '0', '--smtp-port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; i < 200 && !/curl -s .*'\n/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      const curlLine = /curl -s --user (\S+) '(imap:\/\/[^']+)'/.exec(out);
      expect(curlLine, out).not.toBeNull();
      const { stdout } = await exec('curl', ['-s', '--user', curlLine![1]!, curlLine![2]!]);
      expect(stdout).toContain('Subject: Welcome to oauth-mail-proxy');
      const pop3Line = /curl -s --user (\S+) '(pop3:\/\/[^']+)'/.exec(out);
      expect(pop3Line, out).not.toBeNull();
      const pop3 = await exec('curl', ['-s', '--user', pop3Line![1]!, pop3Line![2]!]);
      expect(pop3.stdout).toContain('Subject: Welcome to oauth-mail-proxy');
      const statusPage = /Status page: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      expect(statusPage, out).not.toBeNull();
      const status = (await (await fetch(`${statusPage![1]}api/status`)).json()) as { accounts: { account: string; state: string }[] };
      expect(status.accounts.find((a) => a.account === 'consent@example.com')?.state).toBe('needs_authorization');
    } finally {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    }
    expect(out).not.toMatch(TOKEN_PATTERN);
  });
});
