import { dirname } from 'node:path';
import { AccountRegistry } from './accounts/registry.js';
import { LoginThrottle } from './accounts/throttle.js';
import { registerAuthMetrics } from './admin/auth-metrics.js';
import { createProxyMetrics, type ProxyMetrics } from './admin/metrics.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { combineTokenEvents, createNeedsAuthorizationHook } from './hooks.js';
import { loadConfigFile } from './config/load.js';
import type { Config } from './config/resolve.js';
import type { ListenerConfig } from './config/schema.js';
import { IMAP_REPLIES } from './imap/replies.js';
import { handleImapConnection, type ImapSessionDeps } from './imap/session.js';
import { SMTP_REPLIES } from './smtp/replies.js';
import { createSmtpHandler } from './smtp/server.js';
import { POP3_REPLIES } from './pop3/replies.js';
import { handlePop3Connection, type Pop3SessionDeps } from './pop3/session.js';
import { SHUTDOWN_DEADLINE_MS } from './limits.js';
import { createLogger, type Logger } from './log.js';
import { ListenerSet, type OpenedListener, type RunningListener } from './listener-set.js';
import { startListener, type ConnectionHandler } from './net/listener.js';
import { reloadApp } from './reload.js';
import { LocalTls } from './net/local-tls.js';
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
  metrics: ProxyMetrics;
  /** The admin listener, when `admin` is configured. */
  admin?: AdminServer | undefined;
  /** Stops accepting, lets sessions finish up to the deadline, then closes everything. */
  close(deadlineMs?: number): Promise<void>;
  /**
   * Applies a changed config without dropping a session (SIGHUP): accounts added, removed and
   * changed, listeners started, stopped and changed, the log level. What cannot change while
   * running (token store, admin listener, login throttle, hooks) is named in a warning.
   */
  reload(config: Config): Promise<void>;
}

export type { RunningListener };

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
  const metrics = createProxyMetrics({ accounts: () => tokens.status() });
  const throttle = new LoginThrottle(config.loginThrottle);
  const accounts = new AccountRegistry(config.accounts, log, throttle, registerAuthMetrics(metrics.registry, throttle));
  const hook = config.hooks?.needsAuthorization ? createNeedsAuthorizationHook(config.hooks.needsAuthorization, log) : undefined;
  const tokens = createTokenManager({ accounts: config.accounts, store, log, events: combineTokenEvents(metrics, hook) });
  let current = config;
  const listeners = new ListenerSet((l) => openListener(l, current, { accounts, tokens, log, metrics }), log);
  let admin: AdminServer | undefined;
  let closing = false;
  try {
    await listeners.startAll(config.listeners);
    if (config.admin) {
      admin = await startAdminServer({ settings: config.admin, accounts: () => current.accounts, tokens, metrics, log, healthy: () => !closing,
        throttle: new LoginThrottle(config.loginThrottle),
      });
    }
  } catch (err) {
    await listeners.close(0);
    await tokens.stop();
    await store.close();
    throw err;
  }
  tokens.start();
  listeners.logStarted();
  const app: App = {
    config, log, accounts, tokens, store, metrics, admin,
    get listeners() {
      return listeners.running;
    },
    async close(deadlineMs = config.shutdownTimeoutMs ?? SHUTDOWN_DEADLINE_MS) {
      closing = true; // /healthz says 503 while sessions drain
      await listeners.close(deadlineMs);
      await admin?.close();
      await tokens.stop();
      await store.close();
      log.info({ event: 'proxy.stop' }, 'stopped');
    },
    async reload(next) {
      const previous = current;
      current = next;
      app.config = next;
      await reloadApp(previous, next, { accounts, tokens, listeners, log });
    },
  };
  return app;
}

interface Services {
  accounts: AccountRegistry;
  tokens: TokenManager;
  log: Logger;
  metrics: ProxyMetrics;
}

async function openListener(listener: ListenerConfig, config: Config, services: Services): Promise<OpenedListener> {
  // A listener without its own certificate gets a self-signed one kept beside the token store.
  const tls = listener.tls === 'none' ? undefined : await LocalTls.open(listener, dirname(config.tokenStore.path));
  const handle = connectionHandler(listener, services, tls);
  // On an SMTP relay listener `allow` names the networks that may send without AUTH
  // (src/smtp/session.ts): everyone else may still connect, and must AUTH.
  const accept = listener.protocol === 'smtp' && listener.relay_account !== undefined ? { ...listener, allow: undefined } : listener;
  return { listener: await startListener(accept, handle, { log: services.log, tls, busyGreeting: BUSY_GREETINGS[listener.protocol] }), tls };
}

/** Each protocol's own refusal greeting, for a connection over a listener's caps. */
const BUSY_GREETINGS: Record<ListenerConfig['protocol'], string> = {
  imap: IMAP_REPLIES.tooManyConnections,
  pop3: POP3_REPLIES.tooManyConnections,
  smtp: SMTP_REPLIES.tooManyConnections,
};

function connectionHandler(listener: ListenerConfig, services: Services, tls: LocalTls | undefined): ConnectionHandler {
  if (listener.protocol === 'smtp') return createSmtpHandler({ listener, ...services, tls });
  const handle = listener.protocol === 'imap' ? handleImapConnection : handlePop3Connection;
  // Every session keeps its deps for its whole life: one object per listener (whose shutdown
  // signal never changes), not one per connection.
  let deps: ImapSessionDeps & Pop3SessionDeps | undefined;
  return (socket, client, shutdown, deadline) => {
    if (deps?.shutdown !== shutdown) deps = { listener, ...services, tls, shutdown, deadline };
    return handle(socket, client, deps);
  };
}
