import { isIP } from 'node:net';
import { parseListen } from './config/listen-address.js';
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
  /** Old listeners still serving (kept, or restarted) because their replacement could not start. */
  retained: string[];
}

/**
 * The proxy's listeners, and how a reload changes them (SIGHUP): a listener whose config is
 * unchanged keeps running untouched, except that it reads its certificate files again and
 * uses a renewed pair from the next handshake on (as it also does by itself, at most a minute
 * after the files change: src/net/local-tls.ts); a removed or changed one stops accepting
 * and frees its port, while its sessions (relayed ones above all) run on to their natural end;
 * a new or changed one starts. A change must not lose a listener: a new one binds before the
 * old one stops, unless they need the same address, and an old one whose replacement cannot
 * start keeps serving. Closing the set ends everything, draining listeners included.
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

  /**
   * A reload: new and changed listeners start, then the removed ones stop, so that a failed
   * start (a busy port) leaves the old listener of that protocol serving. One that needs an old
   * one's address cannot wait: that old one stops first, and is restarted if the new one fails.
   */
  async apply(configs: readonly ListenerConfig[]): Promise<ListenerChanges> {
    const wanted = new Map(configs.map((c) => [listenerKey(c), c]));
    const changes: ListenerChanges = { kept: 0, started: [], stopped: [], renewed: [], failed: [], retained: [] };
    const leaving: RunningListener[] = [];
    const kept: RunningListener[] = [];
    for (const r of this.#running) {
      if (!wanted.delete(listenerKey(r.config))) {
        leaving.push(r);
        continue;
      }
      kept.push(r);
      changes.kept++;
      await this.#renewCertificate(r, changes);
    }
    this.#running = kept;
    for (const config of wanted.values()) await this.#replace(config, leaving, changes);
    for (const r of leaving) await this.#stop(r, changes);
    return changes;
  }

  /** Starts `config`; takes what it replaces out of `leaving` when that must stay or already went. */
  async #replace(config: ListenerConfig, leaving: RunningListener[], changes: ListenerChanges): Promise<void> {
    const blockers = take(leaving, (r) => mayShareAddress(r.config.listen, config.listen));
    if (blockers.length > 0) return this.#rebind(config, blockers, changes);
    const failure = await this.#start(config, changes);
    if (failure === undefined) return;
    const [predecessor] = take(leaving, (r) => r.config.protocol === config.protocol, 1);
    if (predecessor) this.#retain(predecessor, config, failure, changes);
    else this.#logStartFailed(config, failure, 'no previous listener to keep');
  }

  /** The same address: the old listener must free the port first, and comes back if the new one fails. */
  async #rebind(config: ListenerConfig, blockers: RunningListener[], changes: ListenerChanges): Promise<void> {
    for (const r of blockers) await this.#stopAccepting(r);
    const failure = await this.#start(config, changes);
    if (failure === undefined) {
      for (const r of blockers) this.#logStopped(r, changes);
      return;
    }
    this.#logStartFailed(config, failure, `restarting ${blockers.map((r) => describe(r.config)).join(', ')} as before`);
    for (const r of blockers) {
      const again = await this.#start(r.config, changes, { restore: true });
      if (again === undefined) changes.retained.push(describe(r.config));
      else this.#logStopped(r, changes);
    }
  }

  /** Opens a listener; the error when it cannot start (recorded as failed, logged by the caller unless restoring). */
  async #start(config: ListenerConfig, changes: ListenerChanges, how: { restore?: boolean } = {}): Promise<unknown> {
    try {
      const r = this.#watch({ config, ...await this.#open(config) });
      this.#running.push(r);
      if (how.restore) {
        this.#log.warn({ event: 'listener.restored', protocol: config.protocol, listen: config.listen }, `${describe(config)} is serving again with its previous settings`);
      } else {
        this.#logStart(r);
        changes.started.push(describe(config));
      }
      return undefined;
    } catch (err) {
      changes.failed.push(describe(config));
      if (how.restore) this.#logStartFailed(config, err, 'its previous settings could not be restored either');
      return err ?? new Error('unknown error');
    }
  }

  /** The replacement failed: the old listener never stopped, and goes on serving. */
  #retain(r: RunningListener, failed: ListenerConfig, err: unknown, changes: ListenerChanges): void {
    this.#running.push(r);
    changes.retained.push(describe(r.config));
    this.#logStartFailed(failed, err, `${describe(r.config)} keeps serving`);
  }

  async #stop(r: RunningListener, changes: ListenerChanges): Promise<void> {
    await this.#stopAccepting(r);
    this.#logStopped(r, changes);
  }

  async #stopAccepting(r: RunningListener): Promise<void> {
    if (r.tls) r.tls.onRecheck = undefined;
    await r.listener.stopAccepting();
    this.#draining.push(r.listener);
  }

  #logStopped(r: RunningListener, changes: ListenerChanges): void {
    changes.stopped.push(describe(r.config));
    this.#log.info({ event: 'listener.stop', protocol: r.config.protocol, listen: r.config.listen, sessions: r.listener.activeSessions() },
      `${r.config.protocol} ${r.config.listen} no longer accepts; its ${r.listener.activeSessions()} sessions run on`);
  }

  #logStartFailed(config: ListenerConfig, err: unknown, outcome: string): void {
    const reason = describeError(err);
    this.#log.error({ event: 'listener.start_failed', protocol: config.protocol, listen: config.listen, err: reason, outcome },
      `cannot start ${describe(config)}: ${reason}; ${outcome}`);
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

/** Removes and returns up to `limit` items of `list` that match. */
function take<T>(list: T[], match: (item: T) => boolean, limit = Infinity): T[] {
  const out: T[] = [];
  for (let i = 0; i < list.length && out.length < limit; ) {
    if (match(list[i] as T)) out.push(...list.splice(i, 1));
    else i++;
  }
  return out;
}

/**
 * Whether two listen addresses may need the same socket, so that the old listener must let go
 * before the new one can bind. Errs towards yes: a host name may resolve to anything, and a
 * wildcard (0.0.0.0, ::) takes the port on every address. Port 0 is a fresh port each time.
 */
function mayShareAddress(a: string, b: string): boolean {
  const x = parseListen(a);
  const y = parseListen(b);
  if (x.port !== y.port || x.port === 0) return false;
  const wide = (host: string): boolean => !isIP(host) || host === '0.0.0.0' || canonical(host) === '::';
  return canonical(x.host) === canonical(y.host) || wide(x.host) || wide(y.host);
}

/** One spelling per address: "0:0::1" and "::1" are the same IPv6 address. */
function canonical(host: string): string {
  return isIP(host) === 6 ? new URL(`http://[${host}]/`).hostname.slice(1, -1) : host.toLowerCase();
}

function describe(config: ListenerConfig): string {
  return `${config.protocol} ${config.listen}`;
}
