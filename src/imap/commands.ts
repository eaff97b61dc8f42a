import type { ListenerConfig } from '../config/schema.js';
import { ProxyError } from '../errors.js';
import { Secret } from '../secret.js';
import { authenticate } from './authenticate.js';
import { astringValue, isNil, type ImapCommand } from './syntax.js';

/** What a pre-login command handler may do; the session provides it. */
export interface PreLoginContext {
  readonly listener: ListenerConfig;
  readonly isTls: boolean;
  /** True while a STARTTLS listener is still plaintext: LOGINDISABLED (RFC 3501 section 6.2.3). */
  readonly loginDisabled: boolean;
  /** STARTTLS is offered right now. */
  readonly canStartTls: boolean;
  send(lines: string | readonly string[]): Promise<void>;
  /**
   * Sends a SASL continuation ("+ " and the base64 challenge) and returns the client's answer
   * line. A "*" answer cancels: throws ProxyError `bad_input` (RFC 3501 section 6.2.2).
   */
  saslExchange(challenge: string): Promise<string>;
  /**
   * Upgrades the connection after the OK was sent, dropping pipelined plaintext. False when
   * the handshake failed: the connection is unusable then.
   */
  startTls(): Promise<boolean>;
}

/** A local login to check: what LOGIN and AUTHENTICATE hand back to the session. */
export interface LoginRequest {
  kind: 'login';
  tag: string;
  username: string;
  password: Secret;
  /** For the log: LOGIN, AUTHENTICATE PLAIN or AUTHENTICATE LOGIN. */
  method: string;
}

/** `close`: the session ends here, with this outcome for the log (logout, tls_failed). */
export type CommandResult = { kind: 'continue' } | { kind: 'close'; outcome: string } | LoginRequest;

export type ConnectionState = 'not_authenticated';

/**
 * A row of the command table: the states a command is valid in, its TLS requirement, and its
 * handler. `privacy`: `any`; `required` (refused with PRIVACYREQUIRED while LOGINDISABLED
 * applies); `before_tls` (STARTTLS: only while plaintext and offered).
 */
export interface CommandSpec {
  states: readonly ConnectionState[];
  privacy: 'any' | 'required' | 'before_tls';
  handle(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult>;
}

const CONTINUE: CommandResult = { kind: 'continue' };

/** The capabilities we announce before login. */
export function preLoginCapabilities(ctx: Pick<PreLoginContext, 'loginDisabled' | 'canStartTls'>): string {
  const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID'];
  if (ctx.canStartTls) caps.push('STARTTLS');
  // Like Dovecot, no AUTH= mechanism is offered while LOGINDISABLED: a client would send its
  // password (SASL-IR) before learning that we refuse it.
  if (ctx.loginDisabled) caps.push('LOGINDISABLED');
  else caps.push('AUTH=PLAIN', 'AUTH=LOGIN');
  return caps.join(' ');
}

function noArguments(command: ImapCommand): void {
  if (command.args.length > 0) throw new ProxyError('bad_input', `${command.name} takes no arguments`);
}

async function capability(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  noArguments(command);
  await ctx.send([`* CAPABILITY ${preLoginCapabilities(ctx)}`, `${command.tag} OK CAPABILITY completed`]);
  return CONTINUE;
}

async function noop(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  noArguments(command);
  await ctx.send(`${command.tag} OK NOOP completed`);
  return CONTINUE;
}

/** RFC 2971: one argument, a list of field-value pairs or NIL. We only answer with our name. */
async function id(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  const [arg, extra] = command.args;
  if (!arg || extra || (arg.type !== 'list' && !isNil(arg))) throw new ProxyError('bad_input', 'ID takes a list or NIL');
  await ctx.send(['* ID ("name" "oauth-mail-proxy")', `${command.tag} OK ID completed`]);
  return CONTINUE;
}

async function logout(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  noArguments(command);
  await ctx.send(['* BYE oauth-mail-proxy logging out', `${command.tag} OK LOGOUT completed`]);
  return { kind: 'close', outcome: 'logout' };
}

/** RFC 3501 section 6.2.1: OK first, then the handshake; a failed handshake ends the session. */
async function starttls(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  noArguments(command);
  await ctx.send(`${command.tag} OK Begin TLS negotiation now`);
  return (await ctx.startTls()) ? CONTINUE : { kind: 'close', outcome: 'tls_failed' };
}

/** LOGIN user password, both astrings (atom, quoted or literal). */
async function login(_ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  const [userArg, passwordArg, extra] = command.args;
  const username = astringValue(userArg);
  const password = astringValue(passwordArg);
  if (username === undefined || password === undefined || extra) {
    throw new ProxyError('bad_input', 'LOGIN takes a user name and a password');
  }
  return { kind: 'login', tag: command.tag, username, password: new Secret(password), method: 'LOGIN' };
}

const NOT_AUTHENTICATED: readonly ConnectionState[] = ['not_authenticated'];

/** The pre-login command table. Anything else is BAD before login. */
export const PRELOGIN_COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ['CAPABILITY', { states: NOT_AUTHENTICATED, privacy: 'any', handle: capability }],
  ['NOOP', { states: NOT_AUTHENTICATED, privacy: 'any', handle: noop }],
  ['ID', { states: NOT_AUTHENTICATED, privacy: 'any', handle: id }],
  ['LOGOUT', { states: NOT_AUTHENTICATED, privacy: 'any', handle: logout }],
  ['STARTTLS', { states: NOT_AUTHENTICATED, privacy: 'before_tls', handle: starttls }],
  ['LOGIN', { states: NOT_AUTHENTICATED, privacy: 'required', handle: login }],
  ['AUTHENTICATE', { states: NOT_AUTHENTICATED, privacy: 'required', handle: authenticate }],
]);
