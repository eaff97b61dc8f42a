import { ProxyError } from '../errors.js';
import { LOGIN_PASSWORD_PROMPT, LOGIN_USERNAME_PROMPT, decodeLoginPassword, decodeLoginUsername } from '../sasl/login.js';
import { actsAsItself, decodePlain } from '../sasl/plain.js';
import type { CommandResult, PreLoginContext } from './commands.js';
import { IMAP_REPLIES } from './replies.js';
import type { ImapCommand } from './syntax.js';

/**
 * AUTHENTICATE PLAIN and LOGIN (RFC 3501 section 6.2.2), each a short dialogue. The initial
 * response may come with the command (SASL-IR, RFC 4959), where "=" stands for an empty one.
 */
export async function authenticate(ctx: PreLoginContext, command: ImapCommand): Promise<CommandResult> {
  const [mechanismArg, initialArg, extra] = command.args;
  if (mechanismArg?.type !== 'atom' || extra || (initialArg && initialArg.type !== 'atom')) {
    throw new ProxyError('bad_input', 'AUTHENTICATE takes a mechanism and an optional initial response');
  }
  const initial = initialArg?.type === 'atom' ? (initialArg.value === '=' ? '' : initialArg.value) : undefined;
  switch (mechanismArg.value.toUpperCase()) {
    case 'PLAIN':
      return authPlain(ctx, command.tag, initial);
    case 'LOGIN':
      return authLogin(ctx, command.tag, initial);
    default:
      // RFC 3501: an unsupported mechanism is refused with NO, so the client may try another.
      await ctx.send(IMAP_REPLIES.unsupportedMechanism(command.tag));
      return { kind: 'continue' };
  }
}

/** PLAIN (RFC 4616): one message, authzid NUL authcid NUL password. */
async function authPlain(ctx: PreLoginContext, tag: string, initial: string | undefined): Promise<CommandResult> {
  const response = initial ?? await ctx.saslExchange('');
  const { authzid, authcid, password } = decodePlain(response);
  if (!actsAsItself(authzid, authcid)) {
    // Acting as another user is not something a local password can grant (RFC 4616 section 2).
    throw new ProxyError('auth_failed', 'PLAIN authorization identity differs from the user name');
  }
  return { kind: 'login', tag, username: authcid, password, method: 'AUTHENTICATE PLAIN' };
}

/** LOGIN: a prompt for the user name (skipped when sent as initial response), then the password. */
async function authLogin(ctx: PreLoginContext, tag: string, initial: string | undefined): Promise<CommandResult> {
  const username = decodeLoginUsername(initial || await ctx.saslExchange(LOGIN_USERNAME_PROMPT));
  const password = decodeLoginPassword(await ctx.saslExchange(LOGIN_PASSWORD_PROMPT));
  return { kind: 'login', tag, username, password, method: 'AUTHENTICATE LOGIN' };
}
