import { ProxyError } from '../errors.js';
import { isTimeout } from '../net/deadline.js';
import type { SmtpReply } from './upstream-io.js';

/**
 * An error as smtp-server's hook callbacks take it: `responseCode` is the reply code, `message`
 * the text after it. smtp-server adds no enhanced status code of its own (we keep its
 * hideENHANCEDSTATUSCODES default), so the texts below carry theirs (RFC 3463), and an upstream
 * server's text keeps its own exactly.
 */
export interface SmtpReplyError extends Error {
  responseCode: number;
}

/** Where the error happened: logging in (client AUTH, or the relay's login at MAIL) or a mail transaction. */
export type SmtpPhase = 'login' | 'transaction';

/**
 * The one place where errors become SMTP replies (SPEC section 5): a wrong local password is
 * 535 5.7.8; an identity provider or server that cannot be reached is 454 4.7.0 (RFC 4954
 * section 6: temporary authentication failure), a connection lost in a transaction 451 4.4.0;
 * "needs authorization" is 535 with a text that says what to do. Texts are one printable line
 * and never carry a secret; details belong in the log.
 */
export function smtpErrorReply(err: unknown, phase: SmtpPhase): SmtpReplyError {
  const error = err instanceof ProxyError ? err : undefined;
  switch (error?.code) {
    case 'auth_failed':
      return reply(535, '5.7.8 Authentication credentials invalid');
    case 'needs_authorization':
      return reply(535, `5.7.8 Account needs authorization: ${text(error.message)}`);
    case 'token_expired':
      return reply(535, `5.7.8 ${text(error.message)}`);
    case 'token_rejected':
      return reply(535, '5.7.8 The mail server rejected the access token; check the account\'s scope and that SMTP AUTH is enabled for the mailbox');
    case 'idp_unavailable':
      return reply(454, '4.7.0 Identity provider unavailable, try again later');
    case 'store_failed':
      return reply(454, '4.7.0 Token store unavailable, try again later');
    case 'upstream_unavailable':
      return phase === 'login'
        ? reply(454, '4.7.0 Mail server unavailable, try again later')
        : reply(451, '4.4.0 Connection to the mail server failed, try again later');
    case 'config_invalid':
      return reply(554, `5.3.5 ${text(error.message)}`);
    case 'limit_exceeded':
      return isTimeout(error) ? reply(421, `4.4.2 ${text(error.message)}`) : reply(552, `5.3.4 ${text(error.message)}`);
    case 'bad_input':
      return reply(501, `5.5.4 ${text(error.message)}`);
    case 'aborted':
      return reply(421, '4.3.2 Service shutting down, try again later');
    case undefined:
      return reply(451, '4.3.0 Internal error, try again later');
  }
}

/**
 * An upstream server's reply, handed to the client as it is: code, enhanced code and every line.
 * smtp-server sends `message` with send(code, message), which turns an array into a multi-line
 * reply ("550-...", "550 ...") and strips control characters from each line; a string would be
 * one line. So a multi-line reply travels as an array in `message`, typed as the string smtp-server's
 * declarations promise. test/unit/smtp-server-hooks.test.ts holds smtp-server to this.
 */
export function upstreamReplyError(upstream: SmtpReply): SmtpReplyError {
  const lines = upstream.lines.map((line) => line.replace(/[\x00-\x1f\x7f]+/g, ' '));
  const error = reply(upstream.code, lines.length === 1 ? (lines[0] ?? '') : '');
  if (lines.length > 1) Object.defineProperty(error, 'message', { value: lines as unknown as string });
  return error;
}

/** The text of a positive upstream reply on one line, e.g. the queue id after the message was accepted. */
export function upstreamReplyText(upstream: SmtpReply): string {
  return upstream.lines.join(' ').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** Replies that are not errors of ours, worded once, here. */
export const SMTP_REPLIES = {
  /** smtp-server's `authRequiredMessage` (after 530), and ours for MAIL from outside the relay networks. */
  authRequiredText: '5.7.0 Authentication required',
  authRequired: () => reply(530, SMTP_REPLIES.authRequiredText),
  shuttingDown: { code: 421, text: '4.3.2 Service shutting down, try again later' },
  /**
   * The greeting of a connection over the listener's caps, sent by our listener before
   * smtp-server sees the connection (RFC 5321 sections 3.1 and 4.2.3: 421, then the channel closes; 4.7.0 from RFC 3463).
   */
  tooManyConnections: '421 4.7.0 Too many connections, try again later',
  closing: () => reply(421, '4.3.2 Service shutting down, try again later'),
  loginTimeout: (seconds: number) => ({ code: 421, text: `4.4.2 No login within ${seconds} s, closing connection` }),
  messageTooBig: (max: number) => reply(552, `5.3.4 Message exceeds the maximum size of ${max} bytes`),
  banner: 'oauth-mail-proxy',
} as const;

function reply(code: number, message: string): SmtpReplyError {
  return Object.assign(new Error(message), { responseCode: code });
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
