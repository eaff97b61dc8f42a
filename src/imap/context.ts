import { ProxyError, describeError } from '../errors.js';
import { clientClosedError } from '../net/client-connection.js';
import type { PreLoginContext } from './commands.js';
import type { ImapSession } from './session.js';

/** What the command handlers may do on this session, bounded by `signal` (idle and login timeouts). */
export function preLoginContext(s: ImapSession, signal: AbortSignal): PreLoginContext {
  const { listener, tls } = s.deps;
  const isTls = s.conn.isTls;
  // RFC 3501 section 6.2.3 / RFC 8314: a STARTTLS listener takes no password before TLS.
  const loginDisabled = listener.tls === 'starttls' && !isTls;
  return {
    listener,
    isTls,
    loginDisabled,
    canStartTls: loginDisabled && tls !== undefined,
    send: (lines) => s.conn.send(lines, signal),
    saslExchange: (challenge) => saslExchange(s, challenge, signal),
    startTls: () => startTls(s, signal),
  };
}

/** "+ challenge", then the client's answer line; "*" cancels (RFC 3501 section 6.2.2). */
async function saslExchange(s: ImapSession, challenge: string, signal: AbortSignal): Promise<string> {
  await s.conn.send(`+ ${challenge}`, signal);
  const answer = await s.conn.reader.readLine(signal);
  if (answer.kind === 'eof') throw clientClosedError();
  if (answer.kind === 'too_long') throw new ProxyError('limit_exceeded', 'Line too long');
  const text = answer.line.toString('latin1');
  if (text === '*') throw new ProxyError('bad_input', 'AUTHENTICATE cancelled');
  return text;
}

async function startTls(s: ImapSession, signal: AbortSignal): Promise<boolean> {
  const context = s.deps.tls?.context;
  if (!context) return false;
  try {
    const dropped = await s.conn.startTls(context, signal);
    if (dropped > 0) {
      s.log.warn({ event: 'session.starttls_injection', bytes: dropped }, 'client sent plaintext after STARTTLS; dropped');
    }
    s.log.debug({ event: 'session.starttls' }, 'TLS started');
    return true;
  } catch (err) {
    s.log.info({ event: 'session.tls_failed', reason: describeError(err) }, 'STARTTLS handshake failed');
    return false;
  }
}
