import type { ListenerConfig } from '../config/schema.js';
import { ProxyError } from '../errors.js';
import { Secret } from '../secret.js';
import { auth } from './authenticate.js';
import { POP3_REPLIES } from './replies.js';
import type { Pop3Command } from './syntax.js';

/** What a pre-login command handler may do; the session provides it. */
export interface PreLoginContext {
  readonly listener: ListenerConfig;
  readonly isTls: boolean;
  /** True while a STARTTLS listener is still plaintext: no password is taken (RFC 2595 section 4). */
  readonly plaintextRefused: boolean;
  /** STLS is offered right now. */
  readonly canStartTls: boolean;
  /** The name given by USER, waiting for its PASS (RFC 1939 section 7). */
  pendingUser: string | undefined;
  send(lines: string | readonly string[]): Promise<void>;
  /**
   * Sends "+ " and the base64 challenge and returns the client's answer line. A "*" answer
   * cancels: throws ProxyError `bad_input` (RFC 5034 section 4).
   */
  saslExchange(challenge: string): Promise<string>;
  /**
   * Upgrades the connection after the +OK was sent, dropping pipelined plaintext. False when
   * the handshake failed: the connection is unusable then.
   */
  startTls(): Promise<boolean>;
}

/** A local login to check: what PASS and AUTH hand back to the session. */
export interface LoginRequest {
  kind: 'login';
  username: string;
  password: Secret;
  /** For the log. */
  method: 'USER/PASS' | 'AUTH PLAIN' | 'AUTH LOGIN';
}

/** `close`: the session ends here, with this outcome for the log (quit, tls_failed). */
export type CommandResult = { kind: 'continue' } | { kind: 'close'; outcome: string } | LoginRequest;

/**
 * The AUTHORIZATION state of RFC 1939 section 4, split in two: before USER, and after USER
 * while its PASS is awaited. The TRANSACTION state is the server's: we relay it.
 */
export type Pop3State = 'authorization' | 'user_given';

/**
 * A row of the command table: the states a command is valid in (and what to say otherwise),
 * its TLS requirement, and its handler. `privacy`: `any`; `required` (refused while a
 * STARTTLS listener is still plaintext); `before_tls` (STLS: only while plaintext and offered).
 */
export interface CommandSpec {
  states: readonly Pop3State[];
  wrongState?: string;
  privacy: 'any' | 'required' | 'before_tls';
  handle(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult>;
}

const CONTINUE: CommandResult = { kind: 'continue' };

/**
 * Our CAPA before login (RFC 2449 section 6). TOP and UIDL are the server's to offer; before
 * login we cannot ask it, so we announce them as Gmail and Microsoft 365 do in their own
 * pre-login CAPA. After login, CAPA is relayed and the client gets the server's own list
 * (RFC 2449 section 5: capabilities may change after authentication). No PIPELINING before
 * login: we answer one command at a time, and STLS throws pipelined input away.
 */
export function preLoginCapabilities(ctx: Pick<PreLoginContext, 'plaintextRefused' | 'canStartTls'>): string[] {
  // Like Dovecot, neither USER nor SASL while a password would go over plaintext we refuse.
  const login = ctx.plaintextRefused ? [] : ['USER', 'SASL PLAIN LOGIN'];
  const tls = ctx.canStartTls ? ['STLS'] : [];
  return [...login, ...tls, 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'IMPLEMENTATION oauth-mail-proxy'];
}

function noArguments(command: Pop3Command): void {
  if (command.rest !== '') throw new ProxyError('bad_input', `${command.verb} takes no arguments`);
}

async function capa(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  noArguments(command);
  await ctx.send([POP3_REPLIES.capabilities, ...preLoginCapabilities(ctx), '.']);
  return CONTINUE;
}

async function quit(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  noArguments(command);
  await ctx.send(POP3_REPLIES.quit);
  return { kind: 'close', outcome: 'quit' };
}

/** RFC 2595 section 4: +OK first, then the handshake; a failed handshake ends the session. */
async function stls(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  noArguments(command);
  await ctx.send(POP3_REPLIES.startTls);
  return (await ctx.startTls()) ? CONTINUE : { kind: 'close', outcome: 'tls_failed' };
}

/**
 * USER takes the rest of the line as the name. The +OK says nothing about whether the name is
 * known: that would let anyone probe for accounts (RFC 1939 section 13).
 */
async function user(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  if (command.rest === '') throw new ProxyError('bad_input', 'USER takes a user name');
  ctx.pendingUser = command.rest;
  await ctx.send(POP3_REPLIES.userAccepted);
  return CONTINUE;
}

/** PASS takes the rest of the line, spaces included (RFC 1939 section 7). */
async function pass(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  const username = ctx.pendingUser;
  // Whatever happens next, a new PASS needs a new USER, as after a failed PASS.
  ctx.pendingUser = undefined;
  if (username === undefined) throw new ProxyError('bad_input', 'PASS must follow USER');
  if (command.rest === '') throw new ProxyError('bad_input', 'PASS takes a password');
  return { kind: 'login', username, password: new Secret(command.rest), method: 'USER/PASS' };
}

/** APOP needs the password in clear on our side to check its digest; we keep only a hash. */
async function apop(ctx: PreLoginContext): Promise<CommandResult> {
  await ctx.send(POP3_REPLIES.apopUnsupported);
  return CONTINUE;
}

/** STAT, RETR and the other TRANSACTION commands before login: out of order. */
async function notLoggedIn(_ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  throw new ProxyError('bad_input', `${command.verb} needs a login first: USER and PASS, or AUTH`);
}

const ANY_STATE: readonly Pop3State[] = ['authorization', 'user_given'];

/** The pre-login command table. Anything else is an unknown command. */
export const PRELOGIN_COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([
  ['CAPA', { states: ANY_STATE, privacy: 'any', handle: capa }],
  ['QUIT', { states: ANY_STATE, privacy: 'any', handle: quit }],
  ['STLS', { states: ANY_STATE, privacy: 'before_tls', handle: stls }],
  ['USER', { states: ANY_STATE, privacy: 'required', handle: user }],
  ['PASS', { states: ['user_given'], wrongState: 'PASS must follow USER', privacy: 'required', handle: pass }],
  ['AUTH', { states: ANY_STATE, privacy: 'required', handle: auth }],
  ['APOP', { states: ANY_STATE, privacy: 'any', handle: apop }],
  ...['STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'LAST'].map(
    (verb): [string, CommandSpec] => [verb, { states: ANY_STATE, privacy: 'any', handle: notLoggedIn }],
  ),
]);
