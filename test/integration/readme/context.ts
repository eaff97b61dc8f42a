import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';

/**
 * Where the README's commands run: a scratch "checkout" holding what a user's checkout has
 * after `npm ci && npm run build` (package files, config.example.yaml, deploy/, scripts/, a copy
 * of the built dist/, and the repo's node_modules linked in), a fake root for the `sudo`
 * commands, a private npm prefix for `npm install -g .`, and the demo the README starts.
 */

export const REPO = resolve(import.meta.dirname, '../../..');

export interface Demo {
  process: ChildProcess;
  /** The ports the demo listens on; the test starts it with free ports instead of the defaults. */
  ports: { imap: number; pop3: number; smtp: number };
  output: () => string;
}

export interface Context {
  checkout: string;
  fakeRoot: string;
  npmPrefix: string;
  demo?: Demo | undefined;
}

export function createContext(): Context {
  const top = mkdtempSync(join(tmpdir(), 'readme-commands-'));
  const checkout = join(top, 'checkout');
  mkdirSync(checkout);
  for (const name of ['package.json', 'package-lock.json', 'config.example.yaml', 'deploy', 'scripts', 'dist']) {
    cpSync(join(REPO, name), join(checkout, name), { recursive: true });
  }
  symlinkSync(join(REPO, 'node_modules'), join(checkout, 'node_modules'));
  const fakeRoot = join(top, 'root');
  const npmPrefix = join(top, 'npm-global');
  mkdirSync(join(fakeRoot, 'etc/systemd/system'), { recursive: true });
  return { checkout, fakeRoot, npmPrefix };
}

export async function disposeContext(ctx: Context): Promise<void> {
  if (ctx.demo && ctx.demo.process.exitCode === null) {
    ctx.demo.process.kill('SIGKILL');
    await once(ctx.demo.process, 'exit');
  }
  rmSync(join(ctx.checkout, '..'), { recursive: true, force: true });
}

export interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command line with `sh -c`, as a user's shell would, in the scratch checkout. */
export async function sh(ctx: Context, command: string, options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ShellResult> {
  const child = spawn('sh', ['-c', command], { cwd: ctx.checkout, env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts `node dist/cli.js demo` (what `npm run demo` runs after its build) on free ports. */
export async function ensureDemo(ctx: Context): Promise<Demo> {
  if (ctx.demo) return ctx.demo;
  const args = ['dist/cli.js', 'demo', '--port', '0', '--pop3-port', '0', '--smtp-port', '0', '--admin-port', '0'];
  const child = spawn(process.execPath, args, { cwd: ctx.checkout, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<Demo['ports']>((done, failed) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const main = /IMAP on 127\.0\.0\.1:(\d+), POP3 on 127\.0\.0\.1:(\d+)/.exec(output);
      const smtp = /SMTP on 127\.0\.0\.1:(\d+)/.exec(output);
      if (main && smtp) done({ imap: Number(main[1]), pop3: Number(main[2]), smtp: Number(smtp[1]) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => failed(new Error(`the demo exited with ${code}:\n${output}`)));
    setTimeout(() => failed(new Error(`the demo did not start within 20 s:\n${output}`)), 20_000).unref();
  });
  ctx.demo = { process: child, ports: await ready, output: () => output };
  return ctx.demo;
}

/**
 * The user's edit of config.yaml, done for them: the demo's own account and provider (so that
 * `check` and `serve` run offline against the demo's mock identity provider and servers), on
 * free ports, with a token store of its own beside config.yaml.
 */
export async function writeUserConfig(ctx: Context): Promise<string> {
  await ensureDemo(ctx);
  const demoDir = join(ctx.checkout, 'demo-data');
  const doc = parseDocument(readFileSync(join(demoDir, 'config.yaml'), 'utf8'));
  for (const listener of (doc.get('listeners') as YAMLSeq<YAMLMap>).items) listener.set('listen', '127.0.0.1:0');
  const accounts = doc.get('accounts') as YAMLSeq<YAMLMap>;
  accounts.items = accounts.items.filter((a) => a.get('username') === 'demo@example.com');
  accounts.items[0]!.set('refresh_token_file', join(demoDir, 'demo.rt'));
  doc.setIn(['providers', 'demo', 'client_secret_file'], join(demoDir, 'client-secret'));
  doc.setIn(['admin', 'listen'], '127.0.0.1:0');
  doc.set('token_store', doc.createNode({ path: './data/tokens.enc', key_file: './data/tokens.key' }));
  const path = join(ctx.checkout, 'config.yaml');
  writeFileSync(path, doc.toString());
  return path;
}

/** For `sudo` commands: drop sudo and move the system paths the README uses under the fake root. */
export function underFakeRoot(ctx: Context, command: string): string {
  return command.replace(/^sudo /, '').replace(/(^|\s)\/(opt\/oauth-mail-proxy|etc\/oauth-mail-proxy|etc\/systemd\/system)(?=[\s/]|$)/g, `$1${ctx.fakeRoot}/$2`);
}
