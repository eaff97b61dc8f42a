import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Protocol } from '../config/schema.js';
import type { SessionMetrics, SessionOutcome, SessionRecorder } from '../metrics.js';
import type { AccountTokenStatus, TokenEvents, TokenRefreshEvent } from '../tokens/types.js';

/**
 * The proxy's Prometheus metrics (prom-client, text exposition format 0.0.4): sessions by
 * protocol and outcome, bytes relayed, token refreshes and their failures, accounts needing
 * authorization, and the upstream login latency. Sessions and the token manager report in
 * through the interfaces of metrics.ts and tokens/types.ts; nothing here holds a token.
 */

const PREFIX = 'oauth_mail_proxy_';
/** Upstream logins take tens of milliseconds to a few seconds (TLS, greeting, AUTHENTICATE). */
const LOGIN_BUCKETS_SEC = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ProxyMetrics extends SessionMetrics, TokenEvents {
  readonly registry: Registry;
  /** Sessions of `account` logged in and relaying now (for the status page). */
  activeSessions(account: string): number;
  /** Prometheus text format. */
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  /** Account states, read at each scrape. */
  accounts: () => AccountTokenStatus[];
  /** Process and Node.js runtime metrics (default true). */
  defaultMetrics?: boolean | undefined;
}

function createInstruments(registry: Registry, accounts: () => AccountTokenStatus[]) {
  const registers = [registry];
  new Gauge({
    name: `${PREFIX}accounts_needing_authorization`,
    help: 'Accounts whose grant is gone until a person signs in again',
    registers,
    collect() {
      this.set(accounts().filter((a) => a.state === 'needs_authorization').length);
    },
  });
  new Gauge({
    name: `${PREFIX}accounts`,
    help: 'Accounts by token state',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      for (const state of ['ok', 'refreshing', 'needs_authorization', 'failing', 'unknown']) this.set({ state }, 0);
      for (const a of accounts()) this.inc({ state: a.state });
    },
  });
  return {
    sessions: new Counter({ name: `${PREFIX}sessions_total`, help: 'Client sessions ended, by protocol and outcome', labelNames: ['protocol', 'outcome'], registers }),
    open: new Gauge({ name: `${PREFIX}sessions_open`, help: 'Client connections open now, by protocol', labelNames: ['protocol'], registers }),
    bytes: new Counter({ name: `${PREFIX}relayed_bytes_total`, help: 'Bytes relayed, by protocol and direction', labelNames: ['protocol', 'direction'], registers }),
    logins: new Histogram({
      name: `${PREFIX}upstream_login_duration_seconds`,
      help: 'Upstream login (connect, TLS, greeting, SASL) duration, by protocol and outcome',
      labelNames: ['protocol', 'outcome'],
      buckets: LOGIN_BUCKETS_SEC,
      registers,
    }),
    refreshes: new Counter({ name: `${PREFIX}token_refreshes_total`, help: 'Access token refreshes attempted, by flow and trigger', labelNames: ['flow', 'trigger'], registers }),
    refreshFailures: new Counter({ name: `${PREFIX}token_refresh_failures_total`, help: 'Access token refreshes that failed, by flow and error code', labelNames: ['flow', 'code'], registers }),
  };
}

export function createProxyMetrics(options: MetricsOptions): ProxyMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const { sessions, open, bytes, logins, refreshes, refreshFailures } = createInstruments(registry, options.accounts);
  const active = new Map<string, number>();

  const perSession: SessionInstruments = { sessions, open, bytes, logins };
  const openSession = (protocol: Protocol): SessionRecorder => {
    open.inc({ protocol });
    return new PromSessionRecorder(protocol, perSession, active);
  };

  return {
    registry,
    contentType: registry.contentType,
    openSession,
    activeSessions: (account) => active.get(account.toLowerCase()) ?? 0,
    render: () => registry.metrics(),
    refreshed(event: TokenRefreshEvent) {
      refreshes.inc({ flow: event.flow, trigger: event.trigger });
      if (event.outcome !== 'ok') refreshFailures.inc({ flow: event.flow, code: event.outcome });
    },
  };
}

type SessionInstruments = Pick<ReturnType<typeof createInstruments>, 'sessions' | 'open' | 'bytes' | 'logins'>;

/**
 * One session's recorder. A class, not an object of closures: it lives as long as the session,
 * thousands at a time when clients idle (docs/benchmarks.md, idle memory).
 */
class PromSessionRecorder implements SessionRecorder {
  readonly #protocol: Protocol;
  readonly #instruments: SessionInstruments;
  /** Sessions relaying, per account (lower case); shared by every recorder. */
  readonly #active: Map<string, number>;
  #relayingFor: string | undefined;
  #done = false;

  constructor(protocol: Protocol, instruments: SessionInstruments, active: Map<string, number>) {
    this.#protocol = protocol;
    this.#instruments = instruments;
    this.#active = active;
  }

  async upstreamLogin<T>(attempt: () => Promise<T>): Promise<T> {
    const stop = this.#instruments.logins.startTimer({ protocol: this.#protocol });
    try {
      const result = await attempt();
      stop({ outcome: 'ok' });
      return result;
    } catch (err) {
      stop({ outcome: 'failed' });
      throw err;
    }
  }

  relaying(account: string): void {
    if (this.#relayingFor !== undefined || this.#done) return;
    this.#relayingFor = account.toLowerCase();
    this.#active.set(this.#relayingFor, (this.#active.get(this.#relayingFor) ?? 0) + 1);
  }

  ended(summary: SessionOutcome): void {
    if (this.#done) return;
    this.#done = true;
    const protocol = this.#protocol;
    const { open, sessions, bytes } = this.#instruments;
    open.dec({ protocol });
    sessions.inc({ protocol, outcome: summary.outcome });
    bytes.inc({ protocol, direction: 'from_client' }, summary.bytesFromClient);
    bytes.inc({ protocol, direction: 'from_server' }, summary.bytesFromServer);
    const account = this.#relayingFor;
    if (account !== undefined) this.#active.set(account, Math.max(0, (this.#active.get(account) ?? 1) - 1));
  }
}
