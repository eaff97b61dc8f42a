import { createInterface } from 'node:readline';
import { startAppFromFile } from './app.js';
import { hashPassword } from './accounts/password.js';
import { loadConfigFile } from './config/load.js';
import { describeError } from './errors.js';
import { createLogger } from './log.js';
import { Secret } from './secret.js';
import { openFileStore } from './store/file-store.js';
import { createTokenManager } from './tokens/manager.js';
import { checkAccounts, formatCheckTable } from './check.js';

/**
 * `serve`: run until SIGTERM or SIGINT, then stop accepting, let sessions finish up to the
 * shutdown deadline (those not logged in yet are told goodbye at once) and exit 0. SIGHUP
 * reloads the config file without dropping a session; a config with errors is refused and the
 * running one kept.
 */
export async function runServeCommand(configPath: string): Promise<number> {
  const app = await startAppFromFile(configPath);
  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloads = Promise.resolve();
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ event: 'proxy.stopping', signal }, `${signal}: finishing sessions`);
      // A reload in progress finishes first, so that no listener starts after the others stopped.
      reloads.then(() => app.close()).then(() => resolve(0), (err: unknown) => {
        app.log.error({ event: 'proxy.stop_failed', err: describeError(err) }, 'error while stopping');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (!stopping) reloads = reloads.then(() => reloadFromFile(app, configPath));
    });
  });
}

async function reloadFromFile(app: Awaited<ReturnType<typeof startAppFromFile>>, configPath: string): Promise<void> {
  app.log.info({ event: 'config.reload_start', config: configPath }, 'SIGHUP: reloading the config');
  try {
    await app.reload(loadConfigFile(configPath));
  } catch (err) {
    app.log.error({ event: 'config.reload_failed', err: describeError(err) }, 'config not reloaded; the running config stays in force');
  }
}

/** `token ACCOUNT`: a fresh access token on stdout, nothing else (for passwordeval). */
export async function runTokenCommand(configPath: string, username: string | undefined): Promise<number> {
  if (!username) {
    process.stderr.write('usage: oauth-mail-proxy token ACCOUNT [-c config.yaml]\n');
    return 2;
  }
  const config = loadConfigFile(configPath);
  // Errors only: a failure is said once, in words, below; warnings would add JSON lines to it.
  const log = createLogger({ level: 'error', format: config.log.format, destination: process.stderr });
  const account = config.accounts.find((a) => a.username.toLowerCase() === username.toLowerCase());
  if (!account) {
    process.stderr.write(`oauth-mail-proxy: no account "${username}" in ${configPath}\n`);
    return 1;
  }
  const store = await openFileStore(config.tokenStore, process.env);
  const tokens = createTokenManager({ accounts: config.accounts, store, log });
  try {
    const token = await tokens.getToken(account.username, { signal: AbortSignal.timeout(60_000) });
    process.stdout.write(`${token.reveal()}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`oauth-mail-proxy: ${describeError(err)}\n`);
    return 1;
  } finally {
    await tokens.stop();
    await store.close();
  }
}

/** `check`: config, tokens and a real upstream login per account, as a table. */
export async function runCheckCommand(configPath: string): Promise<number> {
  const config = loadConfigFile(configPath);
  const log = createLogger({ level: 'warn', format: config.log.format, destination: process.stderr });
  const store = await openFileStore(config.tokenStore, process.env);
  const tokens = createTokenManager({ accounts: config.accounts, store, log });
  try {
    process.stdout.write(`config ${configPath}: ok (${config.accounts.length} accounts, ${config.listeners.length} listeners)\n\n`);
    const rows = await checkAccounts(config, tokens);
    process.stdout.write(formatCheckTable(rows));
    return rows.every((r) => r.ok) ? 0 : 1;
  } finally {
    await tokens.stop();
    await store.close();
  }
}

/** `hash-password`: prompt twice on a terminal (no echo), or read one line from stdin. */
export async function runHashPasswordCommand(): Promise<number> {
  const password = process.stdin.isTTY ? await promptTwice() : await readFirstLine();
  if (password === undefined) return 1; // the two typed passwords differed; already said
  if (!password) {
    process.stderr.write('oauth-mail-proxy: empty password\n');
    return 1;
  }
  process.stdout.write(`${await hashPassword(new Secret(password))}\n`);
  return 0;
}

async function readFirstLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

async function promptTwice(): Promise<string | undefined> {
  const first = await promptHidden('Password: ');
  const second = await promptHidden('Again: ');
  if (first !== second) {
    process.stderr.write('oauth-mail-proxy: the two passwords differ\n');
    return undefined;
  }
  return first;
}

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(question);
    // Echo nothing while the password is typed.
    out._writeToOutput = () => {};
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}
