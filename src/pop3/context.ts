import { ProxyError, describeError } from '../errors.js';
import { clientClosedError } from '../net/client-connection.js';
import type { PreLoginContext } from './commands.js';
import type { Pop3Session } from './session.js';

/** What the command handlers may do on this session, bounded by `signal` (idle and login timeouts). */
export function preLoginContext(s: Pop3Session, signal: AbortSignal): PreLoginContext {
  const { listener, tls } = s.deps;
  const isTls = s.conn.isTls;
  const plaintextRefused = listener.tls === 'starttls' && !isTls;
  return {
    listener,
    isTls,
    plaintextRefused,
    canStartTls: plaintextRefused && tls !== undefined,
    get pendingUser() {
      return s.pendingUser;
    },
    set pendingUser(name) {
      s.pendingUser = name;
    },
    send: (lines) => s.conn.send(lines, signal),
    saslExchange: (challenge) => saslExchange(s, challenge, signal),
    startTls: () => startTls(s, signal),
  };
}

/**
 * "+ challenge", then the client's answer line; "*" cancels (RFC 5034 section 4). The answer
 * may be longer than a command line: it is bounded by the reader's limit only.
 */
async function saslExchange(s: Pop3Session, challenge: string, signal: AbortSignal): Promise<string> {
  await s.conn.send(`+ ${challenge}`, signal);
  const answer = await s.conn.reader.readLine(signal);
  if (answer.kind === 'eof') throw clientClosedError();
  if (answer.kind === 'too_long') throw new ProxyError('bad_input', 'Line too long');
  const text = answer.line.toString('latin1');
  if (text === '*') throw new ProxyError('bad_input', 'AUTH cancelled');
  return text;
}

async function startTls(s: Pop3Session, signal: AbortSignal): Promise<boolean> {
  const context = s.deps.tls?.context;
  if (!context) return false;
  // A USER given in plaintext is forgotten: RFC 2595 section 4 starts the session afresh.
  s.pendingUser = undefined;
  try {
    const dropped = await s.conn.startTls(context, signal);
    if (dropped > 0) {
      s.log.warn({ event: 'session.starttls_injection', bytes: dropped }, 'client sent plaintext after STLS; dropped');
    }
    s.log.debug({ event: 'session.starttls' }, 'TLS started');
    return true;
  } catch (err) {
    s.log.info({ event: 'session.tls_failed', reason: describeError(err) }, 'STLS handshake failed');
    return false;
  }
}
