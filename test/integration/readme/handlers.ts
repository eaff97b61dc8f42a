import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { verifyScryptHash } from '../../../src/accounts/password.js';
import { Secret } from '../../../src/secret.js';
import { REPO, ensureDemo, sh, underFakeRoot, writeUserConfig, type Context } from './context.js';
import { serveAndFetch } from './serve.js';

/**
 * How each README command is run. A handler either runs the command for real (`run`), or names
 * the CI step that runs it or its equivalent (`ci`: a file and a line that must be in it, so the
 * claim is checked, not just made), or both. A README command no handler matches fails the test.
 */
export interface Handler {
  name: string;
  match: RegExp;
  ci?: { file: string; line: RegExp; why: string }[];
  run?: (command: string, ctx: Context) => Promise<void>;
}

const CI = '.ci/run';
/** The demo's default ports, which the README's demo commands use. */
export const DEMO_DEFAULT_PORTS = { imap: 1143, pop3: 1110, smtp: 1587 } as const;
const CONTAINER_STEPS = { file: CI, line: /^node scripts\/check-container-steps\.mjs$/m, why: 'runs the Dockerfile\'s steps in a clean folder and starts the image\'s ENTRYPOINT + CMD' };
const COMPOSE_CHECK = { file: CI, line: /^bash scripts\/check-compose\.sh docker-compose\.yml$/m, why: 'validates docker-compose.yml with docker-compose config' };
const UNIT_CHECK = { file: CI, line: /^bash scripts\/check-systemd-unit\.sh deploy\/oauth-mail-proxy\.service$/m, why: 'systemd-analyze verify of the unit' };

async function expectOk(ctx: Context, command: string, options: Parameters<typeof sh>[2] = {}): Promise<string> {
  const r = await sh(ctx, command, options);
  expect(r.code, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The README's demo commands with the demo's default ports replaced by the ports it really got. */
async function onDemoPorts(command: string, ctx: Context): Promise<string> {
  const { ports } = await ensureDemo(ctx);
  return command.replace(/127\.0\.0\.1:(\d+)/g, (m, port: string) => {
    const protocol = (Object.keys(DEMO_DEFAULT_PORTS) as (keyof typeof ports)[]).find((p) => DEMO_DEFAULT_PORTS[p] === Number(port));
    expect(protocol, `${m} is not one of the demo's default ports`).toBeDefined();
    return `127.0.0.1:${ports[protocol!]}`;
  });
}

export const HANDLERS: Handler[] = [
  { name: 'npm ci', match: /^npm ci$/, ci: [{ file: CI, line: /^(\w+=\S+ )*npm ci( |$)/m, why: 'installs from the lockfile' }] },
  { name: 'npm test', match: /^npm test$/, ci: [{ file: CI, line: /^npm test$/m, why: 'the test suite' }] },
  {
    name: 'npm run build',
    match: /^npm run build$/,
    ci: [{ file: 'package.json', line: /"test": "npm run build && /, why: 'npm test builds first' }, { file: CI, line: /^npm test$/m, why: 'which .ci/run runs' }],
  },
  { name: 'npm run test:e2e', match: /^npm run test:e2e$/, ci: [{ file: CI, line: /^npm run test:e2e$/m, why: 'the end-to-end suite' }] },
  { name: 'e2e servers down', match: /^bash test\/e2e\/servers\/down\.sh$/, ci: [{ file: CI, line: /^trap 'bash test\/e2e\/servers\/down\.sh/m, why: 'on exit' }] },
  {
    name: 'npm run demo',
    match: /^npm run demo$/,
    run: async (_command, ctx) => {
      const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      expect(pkg.scripts.demo).toBe('npm run build && node dist/cli.js demo');
      const help = await expectOk(ctx, 'node dist/cli.js demo --help');
      for (const [flag, port] of [['port', 1143], ['pop3-port', 1110], ['smtp-port', 1587]] as const) expect(help).toContain(`--${flag} (default ${port})`);
      const demo = await ensureDemo(ctx);
      expect(demo.output()).toContain('Press Ctrl-C to stop.');
    },
  },
  {
    name: 'curl against the demo (IMAP, POP3)',
    match: /^curl -s --user demo@example\.com:demo-password '(imap|pop3):\/\/127\.0\.0\.1:\d+\/[^']+'$/,
    run: async (command, ctx) => {
      expect(await expectOk(ctx, await onDemoPorts(command, ctx))).toMatch(/^Subject: /m);
    },
  },
  {
    name: 'curl sending through the demo (SMTP)',
    match: /^printf '([^']*)' \| curl -s --url smtp:\/\/127\.0\.0\.1:\d+ .*--upload-file -$/,
    run: async (command, ctx) => {
      await expectOk(ctx, await onDemoPorts(command, ctx));
      const subject = /Subject: ([^\\]+)/.exec(command)?.[1];
      const { ports } = await ensureDemo(ctx);
      const inbox = await expectOk(ctx, `curl -s --user demo@example.com:demo-password 'imap://127.0.0.1:${ports.imap}/INBOX;UID=3'`);
      expect(inbox).toContain(`Subject: ${subject}`);
    },
  },
  {
    name: 'hash-password',
    match: /^node dist\/cli\.js hash-password$/,
    run: async (command, ctx) => {
      const hash = (await expectOk(ctx, command, { input: 'a local password\n' })).trim();
      expect(await verifyScryptHash(hash, new Secret('a local password'))).toBe(true);
    },
  },
  {
    name: 'copy the example config',
    match: /^(mkdir -p config|cp config\.example\.yaml (config\.yaml|config\/config\.yaml))$/,
    run: async (command, ctx) => {
      await expectOk(ctx, command);
      const target = / (\S+)$/.exec(command)![1]!;
      if (command.startsWith('cp ')) expect(readFileSync(join(ctx.checkout, target), 'utf8')).toBe(readFileSync(join(REPO, 'config.example.yaml'), 'utf8'));
      else expect(existsSync(join(ctx.checkout, target))).toBe(true);
    },
  },
  {
    name: 'check',
    match: /^node dist\/cli\.js check -c config\.yaml$/,
    run: async (command, ctx) => {
      await writeUserConfig(ctx);
      const out = await expectOk(ctx, command, { timeoutMs: 25_000 });
      expect(out).toContain('config config.yaml: ok (1 accounts');
      expect(out).toContain('demo@example.com');
    },
  },
  {
    name: 'serve',
    // With or without the heap flags the image and the unit use (README, docs/decisions.md).
    match: /^node (?:--[\w-]+=\d+ )*dist\/cli\.js serve -c config\.yaml$/,
    run: async (command, ctx) => {
      await writeUserConfig(ctx);
      expect(await serveAndFetch(ctx, command)).toMatch(/^Subject: /m);
    },
  },
  {
    name: 'npm install -g .',
    match: /^npm install -g \.$/,
    run: async (command, ctx) => {
      // npm_config_prefix is npm's own --prefix: the global install goes to a scratch folder.
      await expectOk(ctx, command, { env: { npm_config_prefix: ctx.npmPrefix } });
      expect(existsSync(join(ctx.npmPrefix, 'bin/oauth-mail-proxy'))).toBe(true);
    },
  },
  {
    name: 'the installed command',
    match: /^oauth-mail-proxy --help$/,
    run: async (command, ctx) => {
      if (!existsSync(join(ctx.npmPrefix, 'bin/oauth-mail-proxy'))) await expectOk(ctx, 'npm install -g .', { env: { npm_config_prefix: ctx.npmPrefix } });
      const out = await expectOk(ctx, command, { env: { PATH: `${join(ctx.npmPrefix, 'bin')}:${process.env.PATH ?? ''}` } });
      expect(out).toContain('Usage: oauth-mail-proxy <command>');
    },
  },
  { name: 'docker build', match: /^docker build -t oauth-mail-proxy \.$/, ci: [CONTAINER_STEPS] },
  {
    name: 'docker run',
    match: /^docker run -d --name mail-proxy -v "\$PWD\/config:\/config:ro" -v mail-proxy-tokens:\/data -p 127\.0\.0\.1:1143:1143 oauth-mail-proxy$/,
    ci: [CONTAINER_STEPS, { file: 'Dockerfile', line: /^CMD \["serve", "-c", "\/config\/config\.yaml"\]$/m, why: 'the mounted config is the one CMD reads' }, { file: 'Dockerfile', line: /^VOLUME \["\/data"\]$/m, why: 'the token volume' }],
  },
  { name: 'docker compose up', match: /^docker compose up -d --build$/, ci: [COMPOSE_CHECK, CONTAINER_STEPS] },
  {
    name: 'system install copies',
    match: /^sudo (mkdir -p|cp -r|cp) [^|;&]+$/,
    run: async (command, ctx) => {
      await expectOk(ctx, underFakeRoot(ctx, command));
    },
  },
  {
    name: 'runtime install into /opt',
    match: /^sudo sh scripts\/container\/install-runtime\.sh \/opt\/oauth-mail-proxy$/,
    ci: [CONTAINER_STEPS, { file: 'Dockerfile', line: /^RUN sh scripts\/container\/install-runtime\.sh \/app /m, why: 'the same script the image runs' }],
  },
  {
    name: 'systemctl',
    match: /^sudo systemctl (daemon-reload|enable --now oauth-mail-proxy)$/,
    ci: [UNIT_CHECK],
    run: async (_command, ctx) => {
      // What the unit needs is where the README's commands put it.
      const unit = readFileSync(join(ctx.fakeRoot, 'etc/systemd/system/oauth-mail-proxy.service'), 'utf8');
      const execStart = /^ExecStart=\S+ (?:--\S+ )*(\S+) serve -c (\S+)$/m.exec(unit);
      expect(execStart, 'ExecStart=node SCRIPT serve -c CONFIG').not.toBeNull();
      for (const path of [execStart![1]!, execStart![2]!]) expect(existsSync(join(ctx.fakeRoot, path)), `${path} after the README's install`).toBe(true);
    },
  },
];

/** The handler for a command; more than one match is a mistake in the table. */
export function findHandler(command: string): Handler | undefined {
  const found = HANDLERS.filter((h) => h.match.test(command));
  if (found.length > 1) throw new Error(`"${command}" matches ${found.map((h) => h.name).join(' and ')}`);
  return found[0];
}
