import type { SecureContext, TLSSocket } from 'node:tls';
import { UPSTREAM_TLS_DECLINES_BEFORE_PAUSE, UPSTREAM_TLS_RESUME_PAUSE_MS, UPSTREAM_TLS_SESSIONS_MAX } from '../limits.js';

/**
 * TLS session resumption toward mail servers (RFC 8446 section 2.2, RFC 5077): the newest
 * session ticket each server handed out is offered on the next connection, so a login costs
 * an abbreviated handshake instead of a full one with the certificate chain sent, parsed and
 * verified again, on both ends (bench/: a third of the proxy's CPU per login).
 *
 * Why this keeps verification intact: a session is only stored from a connection whose
 * certificate was verified (the 'session' event comes after the handshake, and an unverified
 * connection is destroyed by rejectUnauthorized), and it is only offered on a connection with
 * the same SecureContext, i.e. the same trust anchors. A changed ca_file gets a new context
 * and so starts without sessions. Connections with verification turned off keep their own
 * sessions apart (the key says so). Node still checks the host name against the session's
 * certificate on every resumed connection, and a server that declines the ticket simply
 * performs a full handshake.
 */
export class TlsSessionCache {
  readonly #byContext = new WeakMap<SecureContext, Map<string, ServerSessions>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The session to offer for `key` under `context`, if any (none while the server is declining them). */
  get(context: SecureContext, key: TlsSessionKey): Buffer | undefined {
    const entry = this.#byContext.get(context)?.get(key.id);
    return entry && entry.pausedUntil <= this.#now() ? entry.session : undefined;
  }

  /**
   * Watches a connection made with get()'s answer (`offered`): keeps the newest session it
   * receives (TLS 1.3 sends its tickets after the handshake), and notes whether the server took
   * the one offered. A server that declines UPSTREAM_TLS_DECLINES_BEFORE_PAUSE in a row (Dovecot
   * with a login process per connection cannot resume) is offered none for a while: an offer it
   * will refuse only makes the ClientHello bigger and costs a session to deserialize per login.
   */
  remember(socket: TLSSocket, context: SecureContext, key: TlsSessionKey, offered: boolean): void {
    const entry = this.#entry(context, key.id);
    if (entry.pausedUntil > this.#now()) return;
    socket.once('secureConnect', () => {
      if (!offered) return;
      if (socket.isSessionReused()) entry.declines = 0;
      else if (++entry.declines >= UPSTREAM_TLS_DECLINES_BEFORE_PAUSE) {
        entry.declines = 0;
        entry.session = undefined;
        entry.pausedUntil = this.#now() + UPSTREAM_TLS_RESUME_PAUSE_MS;
      }
    });
    // `on`: a server may send more than one ticket, and the newest is kept.
    socket.on('session', (session: Buffer) => {
      if ((socket.authorized || !key.verified) && entry.pausedUntil <= this.#now()) entry.session = session;
    });
  }

  #entry(context: SecureContext, id: string): ServerSessions {
    let servers = this.#byContext.get(context);
    if (!servers) this.#byContext.set(context, (servers = new Map()));
    let entry = servers.get(id);
    if (!entry) {
      entry = { declines: 0, pausedUntil: 0 };
      servers.set(id, entry);
      if (servers.size > UPSTREAM_TLS_SESSIONS_MAX) {
        const oldest = servers.keys().next().value;
        if (oldest !== undefined) servers.delete(oldest);
      }
    }
    return entry;
  }
}

interface ServerSessions {
  session?: Buffer | undefined;
  /** Offers declined in a row. */
  declines: number;
  /** No offers before this time (epoch ms). */
  pausedUntil: number;
}

/** Which sessions may be offered to a server: its address, the name checked, and whether it is verified. */
export interface TlsSessionKey {
  id: string;
  verified: boolean;
}

export function tlsSessionKey(host: string, port: number, servername: string, verified: boolean): TlsSessionKey {
  return { id: `${verified ? 'verified' : 'unverified'}|${host}|${port}|${servername}`, verified };
}
