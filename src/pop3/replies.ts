import { ProxyError } from '../errors.js';
import { isTimeout } from '../net/deadline.js';

/** What the client is told about an error, and whether the connection ends with it. */
export interface Pop3ErrorReply {
  line: string;
  /** Hang up after sending. */
  close: boolean;
}

/**
 * The one place where errors become POP3 replies. Response codes: [AUTH] and [SYS/TEMP],
 * [SYS/PERM] from RFC 3206 (we announce RESP-CODES and AUTH-RESP-CODE, RFC 2449 and 3206), so
 * that fetchmail and friends can tell a wrong password from a server that is down. A timeout
 * or a shutdown ends the session; every other error leaves it in the AUTHORIZATION state,
 * where the client may try again (RFC 1939 section 7). Texts are short, one printable line,
 * and never carry a secret; details belong in the log.
 */
export function pop3ErrorReply(err: unknown): Pop3ErrorReply {
  const error = err instanceof ProxyError ? err : undefined;
  if (error?.code === 'limit_exceeded' && isTimeout(error)) return { line: `-ERR Autologout; ${text(error.message)}`, close: true };
  if (error?.code === 'aborted' || error?.code === 'limit_exceeded') {
    return { line: `-ERR [SYS/TEMP] ${text(error.message)}`, close: true };
  }
  return { line: `-ERR ${errText(error)}`, close: false };
}

function errText(error: ProxyError | undefined): string {
  switch (error?.code) {
    case 'bad_input':
      return text(error.message);
    case 'auth_failed':
      return '[AUTH] Invalid user name or password';
    case 'needs_authorization':
      return `[AUTH] Account needs authorization: ${text(error.message)}`;
    case 'token_expired':
      return `[AUTH] ${text(error.message)}`;
    case 'token_rejected':
      return '[AUTH] The mail server rejected the access token; check the account\'s scope and that POP access is enabled for the mailbox';
    case 'idp_unavailable':
      return '[SYS/TEMP] Identity provider unavailable, try again later';
    case 'upstream_unavailable':
      return '[SYS/TEMP] Mail server unavailable, try again later';
    case 'store_failed':
      return '[SYS/TEMP] Token store unavailable, try again later';
    case 'config_invalid':
      return `[SYS/PERM] ${text(error.message)}`;
    case 'aborted':
    case 'limit_exceeded':
    case undefined:
      return '[SYS/TEMP] Internal error, try again later';
  }
}

/** Replies that are not errors, or not ProxyErrors, worded once, here. */
export const POP3_REPLIES = {
  greeting: '+OK oauth-mail-proxy ready',
  quit: '+OK oauth-mail-proxy signing off',
  startTls: '+OK Begin TLS negotiation',
  userAccepted: '+OK Send your password',
  capabilities: '+OK Capability list follows',
  mechanisms: '+OK Supported mechanisms follow',
  // RFC 2595 section 4 / RFC 8314: a STARTTLS port takes no password before TLS.
  plaintextRefused: '-ERR [AUTH] Use STLS first; passwords are not accepted over plaintext',
  unsupportedMechanism: '-ERR Unsupported authentication mechanism; use PLAIN or LOGIN',
  apopUnsupported: '-ERR APOP is not supported; use USER and PASS',
  tooManyBadCommands: '-ERR Too many invalid commands',
  /** A relayed session at the end of a shutdown's grace period (the same words as before login). */
  shuttingDown: '-ERR [SYS/TEMP] Server shutting down',
  /**
   * The greeting of a connection over the listener's caps. RFC 1939 section 4 only knows a
   * positive greeting; servers that refuse a connection greet with -ERR, which clients report as
   * a failed connect, and [SYS/TEMP] (RFC 2449 section 8, RFC 3206 section 4) says "try later".
   */
  tooManyConnections: '-ERR [SYS/TEMP] Too many connections, try again later',
} as const;

/**
 * Error texts go on the wire: one line, printable, bounded, so that no message can break the
 * protocol framing (a CRLF in a message would forge a reply).
 */
function text(message: string | undefined): string {
  const clean = (message ?? '').replace(/[^\x20-\x7e]+/g, ' ').trim();
  const bounded = clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
  return bounded || 'Error';
}

