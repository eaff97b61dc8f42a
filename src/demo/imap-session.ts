import { authenticate, refuseLogin } from './imap-auth.js';
import type { ImapConnection } from './imap-connection.js';
import { fetch } from './imap-fetch.js';
import { append, close, expunge, idle, list, noop, select, status, store } from './imap-mailbox-commands.js';
import { search } from './imap-search.js';
import { capabilities, plaintextBeforeStarttls, type ServerContext, type Session, type SessionState } from './imap-state.js';
import { guessTag, ImapError, parseCommand, type ImapCommand } from './imap-syntax.js';

/**
 * One client session of the demo IMAP server, told once: greet, then read a command, look it up
 * in the table, run it, answer; until LOGOUT or the client leaves. Handlers return the text of
 * the tagged OK or throw an ImapError, which becomes the tagged NO or BAD here and only here.
 */

type Handler = (s: Session, cmd: ImapCommand) => Promise<string>;

interface CommandSpec {
  states: readonly SessionState[];
  run: Handler;
}

/** Bad commands in a row after which the server hangs up (as wildduck and smtp-server do). */
const MAX_BAD_IN_A_ROW = 20;
const ANY: readonly SessionState[] = ['not-authenticated', 'authenticated', 'selected'];
const BEFORE_LOGIN: readonly SessionState[] = ['not-authenticated'];
const AFTER_LOGIN: readonly SessionState[] = ['authenticated', 'selected'];
const SELECTED: readonly SessionState[] = ['selected'];

const COMMANDS = new Map<string, CommandSpec>([
  ['CAPABILITY', { states: ANY, run: capability }],
  ['NOOP', { states: ANY, run: noop }],
  ['LOGOUT', { states: ANY, run: logout }],
  ['ID', { states: ANY, run: id }],
  ['STARTTLS', { states: BEFORE_LOGIN, run: starttls }],
  ['AUTHENTICATE', { states: BEFORE_LOGIN, run: authenticate }],
  ['LOGIN', { states: BEFORE_LOGIN, run: async (s) => refuseLogin(s) }],
  ['ENABLE', { states: AFTER_LOGIN, run: enable }],
  ['NAMESPACE', { states: AFTER_LOGIN, run: namespace }],
  ['SELECT', { states: AFTER_LOGIN, run: select }],
  ['EXAMINE', { states: AFTER_LOGIN, run: select }],
  ['LIST', { states: AFTER_LOGIN, run: list }],
  ['LSUB', { states: AFTER_LOGIN, run: list }],
  ['STATUS', { states: AFTER_LOGIN, run: status }],
  ['APPEND', { states: AFTER_LOGIN, run: append }],
  ['SUBSCRIBE', { states: AFTER_LOGIN, run: async () => 'SUBSCRIBE completed' }],
  ['UNSUBSCRIBE', { states: AFTER_LOGIN, run: async () => 'UNSUBSCRIBE completed' }],
  ['IDLE', { states: AFTER_LOGIN, run: idle }],
  ['CHECK', { states: SELECTED, run: noop }],
  ['CLOSE', { states: SELECTED, run: close }],
  ['UNSELECT', { states: SELECTED, run: close }],
  ['EXPUNGE', { states: SELECTED, run: expunge }],
  ['FETCH', { states: SELECTED, run: fetch }],
  ['UID FETCH', { states: SELECTED, run: fetch }],
  ['STORE', { states: SELECTED, run: store }],
  ['UID STORE', { states: SELECTED, run: store }],
  ['SEARCH', { states: SELECTED, run: search }],
  ['UID SEARCH', { states: SELECTED, run: search }],
]);

/** Runs a session until LOGOUT or disconnect. Errors other than ImapError mean the connection is gone. */
export async function runSession(ctx: ServerContext, conn: ImapConnection): Promise<void> {
  const s: Session = { ctx, conn, state: 'not-authenticated', user: undefined, view: undefined, readOnly: false };
  await conn.line(`* OK [CAPABILITY ${capabilities(s)}] oauth-mail-proxy demo IMAP server ready`);
  let badInARow = 0;
  while (s.state !== 'logout') {
    let raw: Buffer | null;
    try {
      raw = await conn.readCommand();
    } catch (err) {
      await conn.line(`* BYE ${err instanceof Error ? err.message : 'Protocol error'}`);
      return;
    }
    if (raw === null) return;
    if (raw.length === 0) continue;
    const ok = await execute(s, raw);
    badInARow = ok ? 0 : badInARow + 1;
    if (badInARow >= MAX_BAD_IN_A_ROW) {
      await conn.line('* BYE Too many bad commands');
      return;
    }
  }
}

/** Runs one command and writes its tagged reply; false when the reply was BAD. */
async function execute(s: Session, raw: Buffer): Promise<boolean> {
  let tag = guessTag(raw);
  try {
    const cmd = parseCommand(raw);
    tag = cmd.tag;
    s.ctx.stats.commands.push(cmd.verb);
    const spec = COMMANDS.get(cmd.verb);
    if (!spec) throw new ImapError('BAD', `Unknown command ${cmd.verb}`);
    if (!spec.states.includes(s.state)) throw new ImapError('BAD', `${cmd.verb} not allowed in this state`);
    const reply = `${tag} OK ${await spec.run(s, cmd)}\r\n`;
    if (cmd.verb === 'STARTTLS') await upgrade(s, reply);
    else await s.conn.send(reply);
    return true;
  } catch (err) {
    if (!(err instanceof ImapError)) throw err;
    await s.conn.line(`${tag} ${err.status} ${err.message}`);
    return err.status !== 'BAD';
  }
}

async function capability(s: Session): Promise<string> {
  await s.conn.line(`* CAPABILITY ${capabilities(s)}`);
  return 'CAPABILITY completed';
}

async function logout(s: Session): Promise<string> {
  await s.conn.line('* BYE Logging out');
  s.state = 'logout';
  return 'LOGOUT completed';
}

/** RFC 2971: the client's ID is ignored, ours is a fixed list. */
async function id(s: Session): Promise<string> {
  await s.conn.line('* ID ("name" "oauth-mail-proxy demo IMAP server" "vendor" "oauth-mail-proxy")');
  return 'ID completed';
}

/** RFC 5161: none of the extensions ENABLE can switch on is implemented, so nothing is enabled. */
async function enable(s: Session): Promise<string> {
  await s.conn.line('* ENABLED');
  return 'ENABLE completed';
}

/** RFC 2342: one personal namespace, no prefix, `/` as delimiter. */
async function namespace(s: Session): Promise<string> {
  await s.conn.line('* NAMESPACE (("" "/")) NIL NIL');
  return 'NAMESPACE completed';
}

async function starttls(s: Session): Promise<string> {
  if (s.ctx.options.tls !== 'starttls' || !s.ctx.secureContext) throw new ImapError('BAD', 'STARTTLS not available');
  if (!plaintextBeforeStarttls(s)) throw new ImapError('BAD', 'TLS already active');
  return 'Begin TLS negotiation now';
}

/**
 * Sends the STARTTLS OK (with the test injection behind it, in the same write), then runs the
 * handshake; bytes the client pipelined after STARTTLS are discarded (RFC 3501 6.2.1).
 */
async function upgrade(s: Session, reply: string): Promise<void> {
  const context = s.ctx.secureContext;
  if (!context) throw new ImapError('BAD', 'STARTTLS not available');
  await s.conn.send(reply + (s.ctx.options.injectAfterStarttls ?? ''));
  s.ctx.stats.starttlsDiscardedBytes += await s.conn.upgrade(context);
}
