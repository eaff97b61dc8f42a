import type { SecureContext, TLSSocket } from 'node:tls';
import { UPSTREAM_TLS_SESSIONS_MAX } from '../limits.js';

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
  readonly #byContext = new WeakMap<SecureContext, Map<string, Buffer>>();

  /** The session to offer for `key` under `context`, if any. */
  get(context: SecureContext, key: TlsSessionKey): Buffer | undefined {
    return this.#byContext.get(context)?.get(key.id);
  }

  /** Keeps the newest session `socket` receives (TLS 1.3 sends its tickets after the handshake). */
  remember(socket: TLSSocket, context: SecureContext, key: TlsSessionKey): void {
    socket.once('session', (session: Buffer) => {
      if (socket.authorized || !key.verified) this.#store(context, key.id, session);
    });
  }

  #store(context: SecureContext, key: string, session: Buffer): void {
    let sessions = this.#byContext.get(context);
    if (!sessions) this.#byContext.set(context, (sessions = new Map()));
    sessions.delete(key);
    sessions.set(key, session);
    if (sessions.size > UPSTREAM_TLS_SESSIONS_MAX) {
      const oldest = sessions.keys().next().value;
      if (oldest !== undefined) sessions.delete(oldest);
    }
  }
}

/** Which sessions may be offered to a server: its address, the name checked, and whether it is verified. */
export interface TlsSessionKey {
  id: string;
  verified: boolean;
}

export function tlsSessionKey(host: string, port: number, servername: string, verified: boolean): TlsSessionKey {
  return { id: `${verified ? 'verified' : 'unverified'}|${host}|${port}|${servername}`, verified };
}
