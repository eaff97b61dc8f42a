import { MAX_LINE_BYTES } from './imap-connection.js';
import { ImapError, tokenText, type ImapCommand } from './imap-syntax.js';
import { capabilities, plaintextBeforeStarttls, type DemoMechanism, type Session } from './imap-state.js';

/**
 * AUTHENTICATE XOAUTH2 and OAUTHBEARER (RFC 3501 section 6.2.2, RFC 7628, Google's XOAUTH2),
 * with the initial response on the command line (SASL-IR, RFC 4959) or after an empty `+ `
 * continuation. A refused token is answered the way Gmail does: a `+ ` challenge carrying a
 * base64 JSON error, then, once the client has answered it, a tagged NO.
 */

/** The error Gmail sends in the failure challenge (same for both mechanisms). */
const GMAIL_ERROR = Buffer.from('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').toString('base64');

interface OAuthCredentials {
  user: string;
  token: string;
}

/** Runs the AUTHENTICATE exchange; returns the tagged OK text or throws the NO / BAD. */
export async function authenticate(s: Session, cmd: ImapCommand): Promise<string> {
  const typed = tokenText(cmd.args[0]) ?? '';
  const mechanism = s.ctx.mechanisms.find((m) => m === typed.toUpperCase());
  if (!mechanism) throw new ImapError('NO', `[CANNOT] Unsupported authentication mechanism ${typed}`);
  if (plaintextBeforeStarttls(s)) throw new ImapError('NO', '[PRIVACYREQUIRED] Use STARTTLS first');
  const initial = tokenText(cmd.args[1]);
  const response = initial ?? (await readSaslResponse(s, ''));
  const credentials = decodeCredentials(mechanism, response === '=' ? '' : response);
  if (!credentials) throw new ImapError('BAD', 'Invalid SASL argument');
  const ok = await checkToken(s, credentials);
  s.ctx.stats.authentications.push({ mechanism: typed, user: credentials.user, ok, initialResponse: initial !== undefined });
  s.ctx.stats.lastMechanism = typed;
  if (!ok) return refuse(s);
  s.ctx.stats.successfulLogins++;
  s.ctx.stats.lastUser = credentials.user;
  s.user = credentials.user;
  s.state = 'authenticated';
  return `[CAPABILITY ${capabilities(s)}] ${credentials.user} authenticated (Success)`;
}

/** Gmail's failure dialogue: error challenge, the client's answer (empty line or ^A), then NO. */
async function refuse(s: Session): Promise<never> {
  s.ctx.stats.failedLogins++;
  await readSaslResponse(s, GMAIL_ERROR);
  throw new ImapError('NO', '[AUTHENTICATIONFAILED] Invalid credentials (Failure)');
}

/** Sends a continuation and reads the client's SASL response line; `*` cancels (RFC 3501 6.2.2). */
async function readSaslResponse(s: Session, challenge: string): Promise<string> {
  await s.conn.line(`+ ${challenge}`);
  const line = await s.conn.reader.readLine(MAX_LINE_BYTES);
  if (line === null) throw new Error('connection closed during AUTHENTICATE');
  const text = line.toString('latin1').trim();
  if (text === '*') throw new ImapError('BAD', 'AUTHENTICATE cancelled');
  return text;
}

async function checkToken(s: Session, credentials: OAuthCredentials): Promise<boolean> {
  if (s.ctx.failNext > 0) {
    s.ctx.failNext--;
    return false;
  }
  try {
    return (await s.ctx.options.validateToken(credentials.user, credentials.token)) === true;
  } catch {
    return false;
  }
}

/** Decodes the base64 initial response of either mechanism; undefined when malformed. */
export function decodeCredentials(mechanism: DemoMechanism, base64: string): OAuthCredentials | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return undefined;
  const fields = Buffer.from(base64, 'base64').toString('utf8').split('\x01');
  const auth = fields.find((field) => field.startsWith('auth='));
  const token = /^auth=Bearer +(\S+)$/i.exec(auth ?? '')?.[1];
  const user = mechanism === 'XOAUTH2' ? xoauth2User(fields) : oauthBearerUser(fields);
  if (!token || !user) return undefined;
  return { user, token };
}

/** XOAUTH2: `user=<user>^Aauth=Bearer <token>^A^A` (Google's XOAUTH2 protocol page). */
function xoauth2User(fields: string[]): string | undefined {
  return fields.find((field) => field.startsWith('user='))?.slice(5) || undefined;
}

/**
 * OAUTHBEARER: a GS2 header `n,a=<authzid>,` first (RFC 7628 section 3.1, RFC 5801), in which
 * `,` and `=` of the name are written `=2C` and `=3D`.
 */
function oauthBearerUser(fields: string[]): string | undefined {
  const authzid = /^[ny],a=([^,]*),$/.exec(fields[0] ?? '')?.[1];
  return authzid?.replace(/=2C/gi, ',').replace(/=3D/gi, '=') || undefined;
}

/** LOGIN carries a password, which this server never accepts: only OAuth 2.0 (RFC 3501 6.2.3). */
export function refuseLogin(s: Session): never {
  s.ctx.stats.failedLogins++;
  if (plaintextBeforeStarttls(s)) throw new ImapError('NO', '[PRIVACYREQUIRED] LOGIN is disabled; use STARTTLS and AUTHENTICATE');
  throw new ImapError('NO', '[AUTHENTICATIONFAILED] LOGIN is disabled: use AUTHENTICATE XOAUTH2 or OAUTHBEARER');
}

