/**
 * One error class for the whole proxy, with a closed union of string codes.
 * Each protocol translates a ProxyError to its wire reply in exactly one function
 * (imap/replies.ts, pop3/replies.ts, smtp/replies.ts).
 */
export type ErrorCode =
  /** The local username or password is wrong. */
  | 'auth_failed'
  /** The account's grant is gone for good (invalid_grant, revoked consent): a person must act. */
  | 'needs_authorization'
  /** Identity provider unreachable, 5xx, timeout, rate limited: try again later, keep every token. */
  | 'idp_unavailable'
  /** The static token has expired; the operator must configure a new one. */
  | 'token_expired'
  /** The upstream mail server refused the access token. */
  | 'token_rejected'
  /** Upstream mail server unreachable, TLS failure, timeout, unexpected reply. */
  | 'upstream_unavailable'
  /** Malformed client input before login. */
  | 'bad_input'
  /** A configured limit was exceeded (line length, literal size, connections). */
  | 'limit_exceeded'
  /** Invalid configuration. */
  | 'config_invalid'
  /** The token store cannot be read, decrypted or written. */
  | 'store_failed'
  /** An operation was aborted (deadline, shutdown). */
  | 'aborted';

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    // `cause` is always set so the chain is never silently dropped.
    super(message, { cause: options.cause ?? null });
    this.code = code;
  }
}

export function isProxyError(err: unknown, code?: ErrorCode): err is ProxyError {
  return err instanceof ProxyError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a ProxyError, keeping an existing one as it is. */
export function toProxyError(err: unknown, code: ErrorCode, message: string): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError(code, message, { cause: err });
}

/** A short, secret-free description of an error chain for logs and the status page. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 4; depth++) {
    if (cur instanceof Error) {
      const { message } = cur;
      const code = (cur as { code?: unknown }).code;
      // A cause that a message already quotes (`cannot listen on X: ${describeError(err)}`) is not said twice.
      if (!parts.some((part) => part.includes(message))) {
        parts.push(typeof code === 'string' && !(cur instanceof ProxyError) ? `${message} (${code})` : message);
      }
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': ');
}
