import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientInfo } from '../accounts/types.js';
import type { ListenerConfig } from '../config/schema.js';
import { ProxyError, describeError, isProxyError } from '../errors.js';
import { MAX_BAD_COMMANDS, MAX_PRELOGIN_LINE_BYTES } from '../limits.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type SessionMetrics, type SessionOutcome, type SessionRecorder } from '../metrics.js';
import { ClientConnection, isClientClosed } from './client-connection.js';
import { isTimeout, startDeadline, type Deadline } from './deadline.js';
import { relay, type RelayOptions } from './relay.js';

/** The numbers of the one `session.end` line, filled in as the session goes. */
export interface SessionSummary extends SessionOutcome {
  relayEnd?: string | undefined;
}

/** What a line-based session needs from its dependencies to open its frame. */
export interface SessionFrameDeps {
  listener: ListenerConfig;
  log: Logger;
  /** Aborted when the proxy shuts down: a session not yet logged in says goodbye at once. */
  shutdown?: AbortSignal | undefined;
  /**
   * Aborted when the shutdown's grace period is over: a relayed session says its protocol's
   * goodbye (between two server lines) and is closed (src/net/relay.ts).
   */
  deadline?: AbortSignal | undefined;
  metrics?: SessionMetrics | undefined;
}

/**
 * What every IMAP and POP3 session has around its own dialogue: a child logger with a session
 * id, the client connection and its line reader, the login deadline, the summary of the
 * `session.end` line, the metrics recorder, and the count of bad commands.
 */
export interface SessionFrame {
  readonly client: ClientInfo;
  readonly log: Logger;
  readonly conn: ClientConnection;
  /** Login timeout (from connect) and shutdown: bounds every wait for the client before login. */
  readonly loginDeadline: Deadline;
  readonly end: SessionSummary;
  readonly metrics: SessionRecorder;
  badCommands: number;
}

export function openSessionFrame<D extends SessionFrameDeps>(protocol: 'imap' | 'pop3', socket: Socket, client: ClientInfo, deps: D): SessionFrame & { readonly deps: D } {
  const { listener } = deps;
  const shutdown = deps.shutdown ? [deps.shutdown] : [];
  // One object literal with `deps` in it, not a spread plus a key: a spread object gets a hidden
  // class of its own, and every idle session would carry one.
  return {
    client,
    log: deps.log.child({ session: randomBytes(6).toString('base64url'), protocol, client: client.address }),
    // The reader's bound is the one for SASL answers; each protocol holds its command lines to its own.
    conn: new ClientConnection(socket, MAX_PRELOGIN_LINE_BYTES),
    loginDeadline: startDeadline(listener.login_timeout * 1000, 'limit_exceeded', `no login within ${listener.login_timeout} s`, shutdown),
    end: { outcome: 'client_closed', bytesFromClient: 0, bytesFromServer: 0 },
    metrics: (deps.metrics ?? NO_METRICS).openSession(protocol),
    badCommands: 0,
    deps,
  };
}

/**
 * The frame's part of a session, told once: `session.start`, the protocol's own `story`
 * (pre-login dialogue, upstream login, relay), then the goodbye close, exactly one
 * `session.end` line and the metrics. A failure the story did not handle is logged, never thrown.
 */
export function runSession(s: SessionFrame, label: string, story: () => Promise<void>): Promise<void> {
  const started = Date.now();
  s.log.info({ event: 'session.start', tls: s.conn.isTls, port: s.client.port }, `${label} session started`);
  // A chain rather than `try { await story() }`: an awaiting frame would be held, with all it
  // references, for the whole life of a relayed session (see relayToEnd).
  return story().then(
    () => endSession(s, label, started),
    (err: unknown) => {
      s.end.outcome = outcomeOf(err);
      s.log.error({ event: 'session.error', err: describeError(err) }, `${label} session failed`);
      return endSession(s, label, started);
    },
  );
}

/** The goodbye close, exactly one `session.end` line, and the metrics. */
async function endSession(s: SessionFrame, label: string, started: number): Promise<void> {
  s.loginDeadline.clear();
  await s.conn.close();
  const { account, outcome, bytesFromClient, bytesFromServer, relayEnd } = s.end;
  s.log.info({ event: 'session.end', account, outcome, bytesFromClient, bytesFromServer, relayEnd, durationMs: Date.now() - started }, `${label} session ended: ${outcome}`);
  s.metrics.ended(s.end);
}

/**
 * The logged-in part of a session: relays the client's connection (and what its reader had
 * buffered) and the server's until both are closed, then records how it ended for the
 * `session.end` line. Deliberately not `async`, and its callers return its promise rather than
 * await it: a suspended async frame per caller, with everything it holds from the login, would
 * otherwise stay for the whole life of the session (memory per idle session, docs/benchmarks.md).
 */
export function relayToEnd(s: SessionFrame, upstream: Duplex, options: Omit<RelayOptions, 'clientLeftover'>): Promise<void> {
  if (s.end.account) s.metrics.relaying(s.end.account);
  const { upstreamLeftover, idleTimeoutMs, signal, goodbye } = options;
  // Spelled out, not spread: see openSessionFrame.
  return relay(s.conn.socket, upstream, { upstreamLeftover, idleTimeoutMs, signal, goodbye, clientLeftover: s.conn.handOver() }).then((result) => {
    Object.assign(s.end, { outcome: 'relayed', relayEnd: result.reason, bytesFromClient: result.bytesFromClient, bytesFromServer: result.bytesFromServer });
  });
}

/** What one pre-login command did: the session goes on, ends, or has logged in (`T`). */
export type CommandStep<T> = 'continue' | 'close' | T;

/**
 * The pre-login dialogue's loop: the greeting, then `nextCommand` until a login succeeds (its
 * result) or the session ends (undefined). Each wait for a command is bounded by the listener's
 * `idle_timeout` and the login deadline. What `nextCommand` throws ends the session with
 * `goodbye(err)`: timeouts, shutdown, the client gone, for which there is no command to answer.
 */
export async function serveUntilLogin<T>(
  s: SessionFrame & { readonly deps: SessionFrameDeps },
  greeting: string,
  nextCommand: (signal: AbortSignal) => Promise<CommandStep<T>>,
  goodbye: (err: unknown) => string | readonly string[],
): Promise<T | undefined> {
  const { idle_timeout: idleSeconds } = s.deps.listener;
  await s.conn.send(greeting);
  for (;;) {
    const idle = startDeadline(idleSeconds * 1000, 'limit_exceeded', `no command for ${idleSeconds} s`, s.loginDeadline.signal);
    try {
      const step = await nextCommand(idle.signal);
      if (step !== 'continue') return step === 'close' ? undefined : step;
    } catch (err) {
      s.end.outcome = outcomeOf(err);
      await s.conn.goodbye(goodbye(err));
      return undefined;
    } finally {
      idle.clear();
    }
  }
}

/** A failed command's reply as the protocol words it, and whether the session ends with it. */
export interface FailureReply {
  lines: string | readonly string[];
  close: boolean;
}

/**
 * Answers a failed command before login. Bad commands are counted and after MAX_BAD_COMMANDS
 * the session hangs up with `tooManyBadCommands` (a client that keeps getting the syntax wrong
 * is broken or probing). A last reply is given up after a while: a client that does not read
 * must not hold the session.
 */
export async function answerFailure(s: SessionFrame, err: unknown, reply: FailureReply, tooManyBadCommands: string): Promise<'continue' | 'close'> {
  if (reply.close) await s.conn.goodbye(reply.lines);
  else await s.conn.send(reply.lines, s.loginDeadline.signal);
  if (err instanceof ProxyError && err.code !== 'bad_input') s.end.outcome = outcomeOf(err);
  if (reply.close) return 'close';
  if (err instanceof ProxyError && err.code === 'bad_input' && ++s.badCommands >= MAX_BAD_COMMANDS) {
    await s.conn.goodbye(tooManyBadCommands);
    s.end.outcome = 'too_many_bad_commands';
    return 'close';
  }
  return 'continue';
}

/** The session's outcome for a failure, for the `session.end` log line. */
export function outcomeOf(err: unknown): string {
  if (isClientClosed(err)) return 'client_closed';
  if (isProxyError(err, 'limit_exceeded') && isTimeout(err)) return 'timeout';
  return err instanceof ProxyError ? err.code : 'error';
}
