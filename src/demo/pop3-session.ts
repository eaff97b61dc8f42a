import type { ImapConnection } from './imap-connection.js';
import { LineTooLongError } from './imap-connection.js';
import { decodeCredentials } from './imap-auth.js';
import { Maildrop } from './pop3-maildrop.js';
import type { DemoPop3Context } from './pop3-server.js';
import { runTransactionCommand } from './pop3-transaction.js';

/**
 * One client of the demo POP3 server: the AUTHORIZATION state (RFC 1939 section 4) that takes
 * only OAuth 2.0 bearer tokens, in the two-step AUTH form (RFC 5034; Microsoft 365's form), then
 * the TRANSACTION state, then UPDATE at QUIT.
 */

/** Longest command or SASL response line; an XOAUTH2 response with a long token fits. */
const MAX_LINE_BYTES = 16 * 1024;

/** The error Gmail sends in its failure challenge. */
const GMAIL_ERROR = Buffer.from('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}').toString('base64');

interface Session {
  readonly ctx: DemoPop3Context;
  readonly conn: ImapConnection;
  drop: Maildrop | undefined;
}

export async function runPop3Session(ctx: DemoPop3Context, conn: ImapConnection): Promise<void> {
  const s: Session = { ctx, conn, drop: undefined };
  await conn.line('+OK Demo POP3 server ready');
  for (;;) {
    const line = await readLine(s);
    if (line === null) return;
    const [word = '', ...args] = line.split(' ');
    const verb = word.toUpperCase();
    ctx.stats.commands.push(verb);
    if (verb === 'QUIT') return quit(s);
    if (verb === 'CAPA') await capa(s);
    else if (s.drop) {
      if (!(await runTransactionCommand(conn, s.drop, verb, args))) await conn.line('-ERR Unknown command');
    } else await authorization(s, verb, args);
  }
}

async function readLine(s: Session): Promise<string | null> {
  try {
    const line = await s.conn.reader.readLine(MAX_LINE_BYTES);
    return line === null ? null : line.toString('latin1');
  } catch (err) {
    if (!(err instanceof LineTooLongError)) throw err;
    await s.conn.line('-ERR Line too long');
    return null;
  }
}

function plaintextBeforeStls(s: Session): boolean {
  return s.ctx.options.tls === 'starttls' && !s.conn.secure;
}

/** RFC 2449: what the server offers in its current state. */
async function capa(s: Session): Promise<void> {
  const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE'];
  if (s.drop) caps.push('PIPELINING', 'X-DEMO-POSTLOGIN');
  else if (plaintextBeforeStls(s)) caps.push('STLS');
  else caps.push(`SASL ${s.ctx.mechanisms.join(' ')}`);
  await s.conn.send('+OK Capability list follows\r\n', ...caps.map((c) => `${c}\r\n`), '.\r\n');
}

async function quit(s: Session): Promise<void> {
  const removed = s.drop?.commit() ?? 0;
  await s.conn.line(`+OK Demo POP3 server signing off (${removed} messages deleted)`);
}

async function authorization(s: Session, verb: string, args: string[]): Promise<void> {
  const { stats } = s.ctx;
  switch (verb) {
    case 'STLS':
      if (!plaintextBeforeStls(s) || !s.ctx.secureContext) return s.conn.line('-ERR STLS not available');
      await s.conn.line('+OK Begin TLS negotiation');
      stats.starttlsDiscardedBytes += await s.conn.upgrade(s.ctx.secureContext);
      return;
    case 'USER':
      return s.conn.line('+OK send PASS');
    case 'PASS':
    case 'APOP':
      // Basic authentication is switched off, as at Gmail and Microsoft 365; the attempt is noted.
      stats.passwordSeen = true;
      stats.failedLogins++;
      return s.conn.line('-ERR [AUTH] Password logins are disabled: use AUTH XOAUTH2 or OAUTHBEARER');
    case 'AUTH':
      return authenticate(s, args);
    default:
      return s.conn.line('-ERR Unknown command, or not valid before login');
  }
}

/** AUTH XOAUTH2 / OAUTHBEARER, two-step only: the mechanism, "+ ", then the base64 response. */
async function authenticate(s: Session, args: string[]): Promise<void> {
  const { stats } = s.ctx;
  const typed = args[0] ?? '';
  const mechanism = s.ctx.mechanisms.find((m) => m === typed.toUpperCase());
  if (!mechanism) {
    // PLAIN, LOGIN and friends carry a password: never accepted here, and noted.
    stats.passwordSeen = true;
    return s.conn.line(`-ERR Unsupported mechanism ${typed}`);
  }
  if (plaintextBeforeStls(s)) return s.conn.line('-ERR [AUTH] Use STLS first');
  if (args.length > 1) {
    stats.failedLogins++;
    stats.authentications.push({ mechanism: typed, user: undefined, ok: false, form: 'one-line' });
    return s.conn.line(`-ERR Initial response not accepted: send AUTH ${mechanism}, then the response after "+ "`);
  }
  await s.conn.line('+ ');
  const response = await readLine(s);
  if (response === null) return;
  if (response === '*') return s.conn.line('-ERR AUTH cancelled');
  const credentials = decodeCredentials(mechanism, response);
  const ok = credentials !== undefined && (await checkToken(s, credentials.user, credentials.token));
  stats.authentications.push({ mechanism: typed, user: credentials?.user, ok, form: 'two-step' });
  stats.lastMechanism = typed;
  if (ok && credentials) {
    stats.successfulLogins++;
    stats.lastUser = credentials.user;
    s.drop = new Maildrop(s.ctx.store.inbox(credentials.user));
    return s.conn.line(`+OK ${credentials.user} logged in, ${s.drop.live().length} messages`);
  }
  stats.failedLogins++;
  if (s.ctx.options.refusal === 'err') return s.conn.line('-ERR [AUTH] Authentication failure: unknown user name or bad password.');
  // Gmail's failure dialogue: the error challenge, the client's answer (empty line or ^A), then -ERR.
  await s.conn.line(`+ ${GMAIL_ERROR}`);
  if ((await readLine(s)) === null) return;
  return s.conn.line('-ERR [AUTH] Invalid credentials (Failure)');
}

async function checkToken(s: Session, user: string, token: string): Promise<boolean> {
  if (s.ctx.failNext > 0) {
    s.ctx.failNext--;
    return false;
  }
  try {
    return (await s.ctx.options.validateToken(user, token)) === true;
  } catch {
    return false;
  }
}
