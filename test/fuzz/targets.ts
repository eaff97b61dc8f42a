import { handleImapConnection } from '../../src/imap/session.js';
import { POP3_REPLIES } from '../../src/pop3/replies.js';
import { handlePop3Connection } from '../../src/pop3/session.js';
import { createSmtpHandler } from '../../src/smtp/server.js';
import type { AccountSettings } from '../../src/config/resolve.js';
import type { FuzzTarget } from './session-rig.js';

/** The session handlers under fuzz, each wired to the rig's services the way app.ts wires it. */

export const imapTarget: FuzzTarget = {
  protocol: 'imap',
  serve: (socket, client, s) =>
    handleImapConnection(socket, client, { listener: s.listener, accounts: s.accounts, tokens: s.tokens, log: s.log, shutdown: s.shutdown, tls: s.tlsContext ? { context: s.tlsContext } : undefined }),
  saidGoodbye: (lines) => lines.some((l) => l.startsWith('* BYE ')),
};

export const pop3Target: FuzzTarget = {
  protocol: 'pop3',
  serve: (socket, client, s) =>
    handlePop3Connection(socket, client, { listener: s.listener, accounts: s.accounts, tokens: s.tokens, log: s.log, shutdown: s.shutdown, tls: s.tlsContext ? { context: s.tlsContext } : undefined }),
  // QUIT's +OK, or the -ERR a session the proxy ends on its own ends with (timeout, too many bad commands, shutdown).
  saidGoodbye: (lines) => lines.at(-1)?.startsWith('-ERR ') === true || lines.includes(POP3_REPLIES.quit),
};

export const smtpTarget: FuzzTarget = {
  protocol: 'smtp',
  serve: (socket, client, s) => {
    const accounts = s.accounts as typeof s.accounts & { find?(username: string): AccountSettings | undefined };
    const find = (username: string) => accounts.find?.(username);
    return createSmtpHandler({ listener: s.listener, accounts: Object.assign(accounts, { find }), tokens: s.tokens, log: s.log, tls: s.tlsContext ? { context: s.tlsContext } : undefined })(socket, client, s.shutdown, s.shutdown); // SMTP has no use for the deadline
  },
  // 221 after QUIT; 421 when the proxy ends the session (timeout, shutdown, too many errors).
  saidGoodbye: (lines) => lines.some((l) => /^(221|421)[ -]/.test(l)),
};
