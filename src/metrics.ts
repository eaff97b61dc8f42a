import type { Protocol } from './config/schema.js';

/**
 * What a protocol session reports for /metrics and the status page. Sessions depend on these
 * interfaces only; admin/metrics.ts implements them with prom-client. A session without a
 * recorder (unit tests, `check`) uses NO_METRICS.
 */

/** The numbers of a session's one `session.end` log line. */
export interface SessionOutcome {
  account?: string | undefined;
  outcome: string;
  bytesFromClient: number;
  bytesFromServer: number;
}

/** One session's recorder, opened when the connection is accepted. */
export interface SessionRecorder {
  /** Times one upstream login attempt (connect, TLS, greeting, AUTHENTICATE). */
  upstreamLogin<T>(attempt: () => Promise<T>): Promise<T>;
  /** The session is logged in and relaying for `account` (an active session of that account). */
  relaying(account: string): void;
  /** Called once, when the session is over. */
  ended(summary: SessionOutcome): void;
}

export interface SessionMetrics {
  openSession(protocol: Protocol): SessionRecorder;
}

const NO_RECORDER: SessionRecorder = {
  upstreamLogin: (attempt) => attempt(),
  relaying: () => undefined,
  ended: () => undefined,
};

export const NO_METRICS: SessionMetrics = { openSession: () => NO_RECORDER };
