import * as oauth from 'oauth4webapi';
import { ProxyError } from '../errors.js';

/**
 * Turns whatever a token endpoint call threw into a ProxyError: `needs_authorization` when a
 * person must act (RFC 6749 section 5.2 errors that retrying cannot fix), `idp_unavailable` for
 * everything that may pass (network, timeout, 5xx, 429, HTML or truncated bodies). Messages name
 * the OAuth error code and a short description, never a token: oauth4webapi errors can carry the
 * response body as `cause`, so they are replaced by a plain, secret-free cause here.
 */

/** What a person must do, per RFC 6749 / OIDC error code, for errors that retrying cannot fix. */
const PERMANENT: Record<string, string> = {
  invalid_grant: 'the grant was revoked or has expired (or the password changed); the account must be authorized again',
  invalid_client: 'the identity provider refused the OAuth client; check client_id and client_secret in the config',
  unauthorized_client: 'this OAuth client may not use this flow; allow it in the app registration or choose another flow',
  consent_required: 'the user must sign in interactively and give consent again',
  interaction_required: 'the user must sign in interactively again (consent, MFA or a policy asks for it)',
  access_denied: 'the user or an administrator denied access; the account must be authorized again',
  invalid_scope: 'the identity provider refused the requested scope; check scope in the config',
  unsupported_grant_type: 'the identity provider does not offer this flow for this client; choose another flow',
};

export interface ExchangeInfo {
  /** Host of the token endpoint, for messages. */
  host: string;
  /** HTTP status of the response, when one arrived. */
  status?: number | undefined;
  callerAborted: boolean;
  timedOut: boolean;
  timeoutMs: number;
}

const MAX_DESCRIPTION_CHARS = 200;

/** First line of an error_description, bounded (Microsoft appends trace ids on later lines). */
export function shortDescription(description: unknown): string | undefined {
  if (typeof description !== 'string') return undefined;
  const line = description.split(/\r?\n/)[0]?.trim() ?? '';
  if (!line) return undefined;
  return line.length > MAX_DESCRIPTION_CHARS ? `${line.slice(0, MAX_DESCRIPTION_CHARS)}…` : line;
}

/** A plain cause naming the OAuth error; read back by `oauthErrorCode` and `oauthErrorText`. */
function oauthCause(code: string, description: string | undefined, status: number): Error {
  const text = description ? `${code}: ${description}` : code;
  return Object.assign(new Error(`token endpoint answered HTTP ${status} ${text}`), { oauthError: code, oauthText: text });
}

function findOAuthCause(err: unknown): { oauthError: string; oauthText: string } | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 8; depth++) {
    const found = cur as { oauthError?: unknown; oauthText?: unknown };
    if (typeof found.oauthError === 'string' && typeof found.oauthText === 'string') {
      return { oauthError: found.oauthError, oauthText: found.oauthText };
    }
    cur = cur.cause;
  }
  return undefined;
}

/** The RFC 6749 error code behind a ProxyError from a token endpoint call, if there was one. */
export function oauthErrorCode(err: unknown): string | undefined {
  return findOAuthCause(err)?.oauthError;
}

/** "invalid_grant: short description", for messages that restate what the provider said. */
export function oauthErrorText(err: unknown): string | undefined {
  return findOAuthCause(err)?.oauthText;
}

function fromOAuthError(code: string, rawDescription: unknown, status: number, host: string): ProxyError {
  const description = shortDescription(rawDescription);
  const cause = oauthCause(code, description, status);
  const said = description ? `${code}: ${description}` : code;
  const action = PERMANENT[code];
  if (action) return new ProxyError('needs_authorization', `${host} refused the token request (${said}): ${action}`, { cause });
  return new ProxyError('idp_unavailable', `${host} refused the token request (${said}, HTTP ${status}), a temporary failure`, { cause });
}

/** A 401 with WWW-Authenticate: oauth4webapi leaves the body unread, so the error code is read here. */
async function fromChallenge(err: oauth.WWWAuthenticateChallengeError, host: string): Promise<ProxyError> {
  let body: unknown;
  try {
    body = await err.response.json();
  } catch {
    body = undefined;
  }
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof record.error === 'string' && record.error ? record.error : err.status === 401 ? 'invalid_client' : undefined;
  if (code) return fromOAuthError(code, record.error_description, err.status, host);
  return new ProxyError('idp_unavailable', `${host} answered HTTP ${err.status} with an authentication challenge`, {
    cause: new Error(err.message),
  });
}

function networkCause(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const code = (err as { code?: unknown }).code;
  return Object.assign(new Error(err.message), typeof code === 'string' ? { code } : {});
}

/** Secret-free reason for a response that is not a token response (oauth4webapi messages are fixed text). */
function unusableReason(err: unknown): string {
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) return err.message;
  return err instanceof Error ? err.name : 'unexpected error';
}

export async function classifyTokenError(err: unknown, info: ExchangeInfo): Promise<ProxyError> {
  const { host, status } = info;
  if (err instanceof ProxyError) return err;
  if (info.callerAborted) return new ProxyError('aborted', `token request to ${host} aborted`, { cause: networkCause(err) });
  if (info.timedOut) {
    return new ProxyError('idp_unavailable', `token endpoint ${host} did not answer within ${info.timeoutMs / 1000} s`, {
      cause: networkCause(err),
    });
  }
  if (status === 429) {
    return new ProxyError('idp_unavailable', `token endpoint ${host} is rate limiting (HTTP 429), a temporary failure`, { cause: new Error('HTTP 429') });
  }
  if (err instanceof oauth.ResponseBodyError) return fromOAuthError(err.error, err.error_description, err.status, host);
  if (err instanceof oauth.WWWAuthenticateChallengeError) return fromChallenge(err, host);
  if (status !== undefined && status >= 500) {
    return new ProxyError('idp_unavailable', `token endpoint ${host} failed (HTTP ${status}), a temporary failure`, { cause: new Error(`HTTP ${status}`) });
  }
  if (status !== undefined) {
    const reason = unusableReason(err);
    return new ProxyError('idp_unavailable', `token endpoint ${host} answered HTTP ${status} with something that is not a token response (${reason})`, {
      cause: new Error(reason),
    });
  }
  const cause = networkCause(err);
  const code = (cause as { code?: string }).code;
  if (code === 'ETRUNCATED') return new ProxyError('idp_unavailable', `token endpoint ${host} sent a truncated response`, { cause });
  return new ProxyError('idp_unavailable', `cannot reach token endpoint ${host}: ${code ? `${cause.message} (${code})` : cause.message}`, { cause });
}
