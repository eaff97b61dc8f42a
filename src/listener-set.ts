import type { ListenerConfig } from './config/schema.js';
import { describeError } from './errors.js';
import type { Logger } from './log.js';
import type { Listener } from './net/listener.js';

/** A listener and the config it was started from. */
export interface RunningListener {
  config: ListenerConfig;
  listener: Listener;
}

export interface ListenerChanges {
  kept: number;
  started: string[];
  stopped: string[];
  failed: string[];
}

/**
 * The proxy's listeners, and how a reload changes them (SIGHUP): a listener whose config is
 * unchanged keeps running untouched; a removed or changed one stops accepting and frees its
 * port, while its sessions (relayed ones above all) run on to their natural end; a new or
 * changed one starts. Closing the set ends everything, draining listeners included.
 */
export class ListenerSet {
  #running: RunningListener[] = [];
  /** Stopped accepting at a reload; their sessions are still running. */
  readonly #draining: Listener[] = [];
  readonly #open: (config: ListenerConfig) => Promise<Listener>;
  readonly #log: Logger;

  constructor(open: (config: ListenerConfig) => Promise<Listener>, log: Logger) {
    this.#open = open;
    this.#log = log;
  }

  get running(): RunningListener[] {
    return [...this.#running];
  }

  /** At start: every listener, or none (the error is thrown). `logStarted` says so once all else is up. */
  async startAll(configs: readonly ListenerConfig[]): Promise<void> {
    try {
      for (const config of configs) this.#running.push({ config, listener: await this.#open(config) });
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  /** `listener.start` for each listener: the line that tells scripts and tests the proxy is ready. */
  logStarted(): void {
    for (const r of this.#running) this.#logStart(r);
  }

  /** A reload: removed and changed listeners stop first (a changed one may keep its port), then new ones start. */
  async apply(configs: readonly ListenerConfig[]): Promise<ListenerChanges> {
    const wanted = new Map(configs.map((c) => [listenerKey(c), c]));
    const changes: ListenerChanges = { kept: 0, started: [], stopped: [], failed: [] };
    const kept: RunningListener[] = [];
    for (const r of this.#running) {
      if (wanted.delete(listenerKey(r.config))) {
        kept.push(r);
        changes.kept++;
        continue;
      }
      await r.listener.stopAccepting();
      this.#draining.push(r.listener);
      changes.stopped.push(describe(r.config));
      this.#log.info({ event: 'listener.stop', protocol: r.config.protocol, listen: r.config.listen, sessions: r.listener.activeSessions() },
        `${r.config.protocol} ${r.config.listen} no longer accepts; its ${r.listener.activeSessions()} sessions run on`);
    }
    this.#running = kept;
    for (const config of wanted.values()) {
      try {
        const r = { config, listener: await this.#open(config) };
        this.#running.push(r);
        this.#logStart(r);
        changes.started.push(describe(config));
      } catch (err) {
        changes.failed.push(describe(config));
        this.#log.error({ event: 'listener.start_failed', protocol: config.protocol, listen: config.listen, err: describeError(err) }, `cannot start ${describe(config)}`);
      }
    }
    return changes;
  }

  /** Stops accepting everywhere, lets sessions finish up to the deadline, then cuts them off. */
  async close(deadlineMs: number): Promise<void> {
    await Promise.all([...this.#running.map((r) => r.listener), ...this.#draining].map((l) => l.close(deadlineMs)));
  }

  #logStart({ config, listener }: RunningListener): void {
    const { host, port } = listener.address();
    this.#log.info({ event: 'listener.start', protocol: config.protocol, tls: config.tls, host, port }, `${config.protocol} listening on ${host}:${port}`);
  }
}

/** Listener configs compare by every key (the schema gives them in a fixed order). */
function listenerKey(config: ListenerConfig): string {
  return JSON.stringify(config);
}

function describe(config: ListenerConfig): string {
  return `${config.protocol} ${config.listen}`;
}
