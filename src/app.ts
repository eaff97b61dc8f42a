import { dirname } from 'node:path';
import { AccountRegistry } from './accounts/registry.js';
import { loadConfigFile } from './config/load.js';
import type { Config } from './config/resolve.js';
import type { ListenerConfig } from './config/schema.js';
import { ProxyError } from './errors.js';
import { handleImapConnection } from './imap/session.js';
import { SHUTDOWN_DEADLINE_MS } from './limits.js';
import { createLogger, type Logger } from './log.js';
import { startListener, type ConnectionHandler, type Listener } from './net/listener.js';
import { createLocalTlsContext } from './net/local-tls.js';
import { openFileStore } from './store/file-store.js';
import type { TokenStore } from './store/token-store.js';
import { createTokenManager } from './tokens/manager.js';
import type { TokenManager } from './tokens/types.js';

/**
 * The composition root: config, logger, store, accounts, tokens, listeners. Everything the
 * proxy runs on is built here once and passed down; nothing below reads files or the
 * environment on its own.
 */
export interface App {
  config: Config;
  log: Logger;
  accounts: AccountRegistry;
  tokens: TokenManager;
  store: TokenStore;
  listeners: RunningListener[];
  /** Stops accepting, lets sessions finish up to the deadline, then closes everything. */
  close(deadlineMs?: number): Promise<void>;
}

export interface RunningListener {
  config: ListenerConfig;
  listener: Listener;
}

export interface StartOptions {
  log?: Logger;
  env?: NodeJS.ProcessEnv;
}

export async function startAppFromFile(configPath: string, options: StartOptions = {}): Promise<App> {
  const config = loadConfigFile(configPath, { env: options.env });
  return startApp(config, options);
}

export async function startApp(config: Config, options: StartOptions = {}): Promise<App> {
  const log = options.log ?? createLogger({ level: config.log.level, format: config.log.format });
  const store = await openFileStore(config.tokenStore, options.env ?? process.env);
  const accounts = new AccountRegistry(config.accounts, log);
  const tokens = createTokenManager({ accounts: config.accounts, store, log });
  const listeners: RunningListener[] = [];
  try {
    for (const listenerConfig of config.listeners) {
      listeners.push({ config: listenerConfig, listener: await openListener(listenerConfig, config, { accounts, tokens, log }) });
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.listener.close(0)));
    await tokens.stop();
    await store.close();
    throw err;
  }
  tokens.start();
  for (const { config: l, listener } of listeners) {
    const { host, port } = listener.address();
    log.info({ event: 'listener.start', protocol: l.protocol, tls: l.tls, host, port }, `${l.protocol} listening on ${host}:${port}`);
  }
  return {
    config, log, accounts, tokens, store, listeners,
    async close(deadlineMs = SHUTDOWN_DEADLINE_MS) {
      await Promise.all(listeners.map((l) => l.listener.close(deadlineMs)));
      await tokens.stop();
      await store.close();
      log.info({ event: 'proxy.stop' }, 'stopped');
    },
  };
}

interface Services {
  accounts: AccountRegistry;
  tokens: TokenManager;
  log: Logger;
}

async function openListener(listener: ListenerConfig, config: Config, services: Services): Promise<Listener> {
  // A listener without its own certificate gets a self-signed one kept beside the token store.
  const tlsContext = listener.tls === 'none' ? undefined : await createLocalTlsContext(listener, dirname(config.tokenStore.path));
  const handle = connectionHandler(listener, services, tlsContext);
  return startListener(listener, handle, { log: services.log, tlsContext });
}

function connectionHandler(
  listener: ListenerConfig,
  services: Services,
  tlsContext: Awaited<ReturnType<typeof createLocalTlsContext>> | undefined,
): ConnectionHandler {
  switch (listener.protocol) {
    case 'imap':
      return (socket, client, shutdown) => handleImapConnection(socket, client, { listener, ...services, tlsContext, shutdown });
    case 'pop3':
    case 'smtp':
      throw new ProxyError('config_invalid', `${listener.protocol} listeners are not available in this version yet`);
  }
}
