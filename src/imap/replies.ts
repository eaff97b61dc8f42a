import { ProxyError } from '../errors.js';
import { isTimeout } from '../net/deadline.js';

/** What the client is told about an error, and whether the connection ends with it. */
export interface ImapErrorReply {
  lines: string[];
  /** The last line is a BYE: close after sending. */
  close: boolean;
}

/**
 * The one place where errors become IMAP replies (response codes from RFC 5530). `tag` is the
 * command's tag, or undefined when there is none: a line too garbled to have one gets an
 * untagged BAD; anything else without a command to answer (a timeout while waiting, shutdown)
 * gets an untagged BYE. Texts are short and never carry a secret;
 * details belong in the log.
 */
export function imapErrorReply(tag: string | undefined, err: unknown): ImapErrorReply {
  const error = err instanceof ProxyError ? err : undefined;
  if (error?.code === 'limit_exceeded' && isTimeout(error)) return bye(`Autologout; ${text(error.message)}`);
  if (error?.code === 'bad_input') return { lines: [`${tag ?? '*'} BAD ${text(error.message)}`], close: false };
  if (tag === undefined || error?.code === 'limit_exceeded') {
    const reason = error?.code === 'aborted' || error?.code === 'limit_exceeded' ? text(error.message) : 'Closing connection';
    return tag === undefined ? bye(reason) : { lines: [`${tag} BAD ${reason}`, `* BYE ${reason}`], close: true };
  }
  return { lines: [`${tag} ${taggedText(error)}`], close: false };
}

function taggedText(error: ProxyError | undefined): string {
  switch (error?.code) {
    case 'auth_failed':
      return 'NO [AUTHENTICATIONFAILED] Invalid credentials';
    case 'needs_authorization':
      return `NO [AUTHENTICATIONFAILED] Account needs authorization: ${text(error.message)}`;
    case 'token_expired':
      return `NO [AUTHENTICATIONFAILED] ${text(error.message)}`;
    case 'token_rejected':
      return 'NO [AUTHENTICATIONFAILED] The mail server rejected the access token; check the account\'s scope and that IMAP access is enabled for the mailbox';
    case 'idp_unavailable':
      return 'NO [UNAVAILABLE] Identity provider unavailable, try again later';
    case 'upstream_unavailable':
      return 'NO [UNAVAILABLE] Mail server unavailable, try again later';
    case 'aborted':
      return 'NO [UNAVAILABLE] Login interrupted, try again later';
    case 'store_failed':
      return 'NO [UNAVAILABLE] Token store unavailable, try again later';
    case 'config_invalid':
      return `NO [CANNOT] ${text(error.message)}`;
    case 'bad_input':
      return `BAD ${text(error.message)}`;
    case 'limit_exceeded':
    case undefined:
      return 'NO [SERVERBUG] Internal error, try again later';
  }
}

/** Replies that are not errors but are worded once, here. */
export const IMAP_REPLIES = {
  privacyRequired: (tag: string) => `${tag} NO [PRIVACYREQUIRED] Use STARTTLS first; passwords are not accepted over plaintext`,
  tooManyBadCommands: '* BYE Too many invalid commands',
  /** A relayed session at the end of a shutdown's grace period (the same words as before login). */
  shuttingDown: '* BYE Server shutting down',
  /** The greeting of a connection over the listener's caps (RFC 3501 section 7.1.5: BYE as greeting). */
  tooManyConnections: '* BYE Too many connections, try again later',
  unsupportedMechanism: (tag: string) => `${tag} NO Unsupported authentication mechanism`,
} as const;

function bye(reason: string): ImapErrorReply {
  return { lines: [`* BYE ${reason}`], close: true };
}

/**
 * Error texts go on the wire: one line, printable, bounded, so that no message can break the
 * protocol framing (a CRLF in a message would forge a reply).
 */
function text(message: string | undefined): string {
  const clean = (message ?? '').replace(/[^\x20-\x7e]+/g, ' ').trim();
  const bounded = clean.length > 300 ? `${clean.slice(0, 297)}...` : clean;
  return bounded || 'Error';
}

