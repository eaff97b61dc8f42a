import type { ListenerConfig } from './config/schema.js';
import { describeError } from './errors.js';
import type { Logger } from './log.js';
import type { Listener } from './net/listener.js';
import type { CertificateRecheck, LocalTls } from './net/local-tls.js';

/** A started listener, and its certificate when it speaks TLS to clients. */
export interface OpenedListener {
  listener: Listener;
  tls?: LocalTls | undefined;
}

/** A listener and the config it was started from. */
export interface RunningListener extends OpenedListener {
  config: ListenerConfig;
}

export interface ListenerChanges {
  kept: number;
  started: string[];
  stopped: string[];
  /** Kept listeners whose certificate files changed: the new pair is in use. */
  renewed: string[];
  failed: string[];
}

/**
 * The proxy's listeners, and how a reload changes them (SIGHUP): a listener whose config is
 * unchanged keeps running untouched, except that it reads its certificate files again and
 * uses a renewed pair from the next handshake on (as it also does by itself, at most a minute
 * after the files change: src/net/local-tls.ts); a removed or changed one stops accepting
 * and frees its port, while its sessions (relayed ones above all) run on to their natural end;
 * a new or changed one starts. Closing the set ends everything, draining listeners included.
 */
export class ListenerSet {
  #running: RunningListener[] = [];
  /** Stopped accepting at a reload; their sessions are still running. */
  readonly #draining: Listener[] = [];
  readonly #open: (config: ListenerConfig) => Promise<OpenedListener>;
  readonly #log: Logger;

  constructor(open: (config: ListenerConfig) => Promise<OpenedListener>, log: Logger) {
    this.#open = open;
    this.#log = log;
  }

  get running(): RunningListener[] {
    return [...this.#running];
  }

  /** At start: every listener, or none (the error is thrown). `logStarted` says so once all else is up. */
  async startAll(configs: readonly ListenerConfig[]): Promise<void> {
    try {
      for (const config of configs) this.#running.push(this.#watch({ config, ...await this.#open(config) }));
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
    const changes: ListenerChanges = { kept: 0, started: [], stopped: [], renewed: [], failed: [] };
    const kept: RunningListener[] = [];
    for (const r of this.#running) {
      if (wanted.delete(listenerKey(r.config))) {
        kept.push(r);
        changes.kept++;
        await this.#renewCertificate(r, changes);
        continue;
      }
      if (r.tls) r.tls.onRecheck = undefined;
      await r.listener.stopAccepting();
      this.#draining.push(r.listener);
      changes.stopped.push(describe(r.config));
      this.#log.info({ event: 'listener.stop', protocol: r.config.protocol, listen: r.config.listen, sessions: r.listener.activeSessions() },
        `${r.config.protocol} ${r.config.listen} no longer accepts; its ${r.listener.activeSessions()} sessions run on`);
    }
    this.#running = kept;
    for (const config of wanted.values()) {
      try {
        const r = this.#watch({ config, ...await this.#open(config) });
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

  /** Reads a kept listener's certificate files again; a pair that cannot be used leaves the old one in use. */
  async #renewCertificate(r: RunningListener, changes: ListenerChanges): Promise<void> {
    if (!r.tls) return;
    try {
      if (await r.tls.reload() === 'unchanged') return;
      changes.renewed.push(describe(r.config));
      this.#logRecheck(r.config, { renewed: true });
    } catch (error) {
      changes.failed.push(`${describe(r.config)} (certificate)`);
      this.#logRecheck(r.config, { renewed: false, error });
    }
  }

  /** Logs what the listener's own re-checks of its certificate find, as a reload's are logged. */
  #watch(r: RunningListener): RunningListener {
    if (r.tls) r.tls.onRecheck = (outcome) => this.#logRecheck(r.config, outcome);
    return r;
  }

  #logRecheck(config: ListenerConfig, outcome: CertificateRecheck): void {
    const { protocol, listen } = config;
    if (outcome.renewed) {
      this.#log.info({ event: 'listener.tls_renewed', protocol, listen }, `${describe(config)}: new certificate in use from the next handshake`);
    } else {
      this.#log.error({ event: 'listener.tls_renew_failed', protocol, listen, err: describeError(outcome.error) },
        `${describe(config)}: certificate files not usable, the previous certificate stays in use`);
    }
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
