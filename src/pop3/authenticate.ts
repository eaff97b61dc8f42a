import { ProxyError } from '../errors.js';
import { LOGIN_PASSWORD_PROMPT, LOGIN_USERNAME_PROMPT, decodeLoginPassword, decodeLoginUsername } from '../sasl/login.js';
import { actsAsItself, decodePlain } from '../sasl/plain.js';
import type { CommandResult, PreLoginContext } from './commands.js';
import { POP3_REPLIES } from './replies.js';
import type { Pop3Command } from './syntax.js';

const MECHANISMS = ['PLAIN', 'LOGIN'] as const;

/**
 * AUTH PLAIN and LOGIN (RFC 5034), each a short dialogue. The initial response may come with
 * the command, where "=" stands for an empty one (RFC 5034 section 4). A bare AUTH lists the
 * mechanisms, as the pre-RFC draft did and as Outlook-era clients still ask.
 */
export async function auth(ctx: PreLoginContext, command: Pop3Command): Promise<CommandResult> {
  const [mechanism, initialArg, extra] = command.args;
  if (mechanism === undefined) {
    await ctx.send([POP3_REPLIES.mechanisms, ...MECHANISMS, '.']);
    return { kind: 'continue' };
  }
  if (extra !== undefined || mechanism === '') throw new ProxyError('bad_input', 'AUTH takes a mechanism and an optional initial response');
  const initial = initialArg === '=' ? '' : initialArg;
  switch (mechanism.toUpperCase()) {
    case 'PLAIN':
      return authPlain(ctx, initial);
    case 'LOGIN':
      return authLogin(ctx, initial);
    default:
      // A refused mechanism is a -ERR; the client may try another (RFC 5034 section 4).
      await ctx.send(POP3_REPLIES.unsupportedMechanism);
      return { kind: 'continue' };
  }
}

/** PLAIN (RFC 4616): one message, authzid NUL authcid NUL password. */
async function authPlain(ctx: PreLoginContext, initial: string | undefined): Promise<CommandResult> {
  const response = initial ?? await ctx.saslExchange('');
  const { authzid, authcid, password } = decodePlain(response);
  if (!actsAsItself(authzid, authcid)) {
    // Acting as another user is not something a local password can grant (RFC 4616 section 2).
    throw new ProxyError('auth_failed', 'PLAIN authorization identity differs from the user name');
  }
  return { kind: 'login', username: authcid, password, method: 'AUTH PLAIN' };
}

/** LOGIN: a prompt for the user name (skipped when sent as initial response), then the password. */
async function authLogin(ctx: PreLoginContext, initial: string | undefined): Promise<CommandResult> {
  const username = decodeLoginUsername(initial || await ctx.saslExchange(LOGIN_USERNAME_PROMPT));
  const password = decodeLoginPassword(await ctx.saslExchange(LOGIN_PASSWORD_PROMPT));
  return { kind: 'login', username, password, method: 'AUTH LOGIN' };
}
