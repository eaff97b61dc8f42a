import type { ImapConnection } from './imap-connection.js';
import { dotStuff, topOf, type Maildrop } from './pop3-maildrop.js';

/**
 * The TRANSACTION-state commands of the demo POP3 server (RFC 1939 section 5): STAT, LIST,
 * UIDL, TOP, RETR, DELE, RSET, NOOP. QUIT and CAPA are the session's. Returns false for a
 * command it does not know.
 */
export async function runTransactionCommand(conn: ImapConnection, drop: Maildrop, verb: string, args: string[]): Promise<boolean> {
  switch (verb) {
    case 'STAT': {
      const live = drop.live();
      await conn.line(`+OK ${live.length} ${live.reduce((sum, [, m]) => sum + m.raw.length, 0)}`);
      return true;
    }
    case 'LIST':
      await listing(conn, drop, args[0], (_n, m) => String(m.raw.length));
      return true;
    case 'UIDL':
      await listing(conn, drop, args[0], (_n, m) => drop.uniqueId(m));
      return true;
    case 'RETR':
      await retrieve(conn, drop, args[0], undefined);
      return true;
    case 'TOP': {
      const lines = /^\d{1,9}$/.test(args[1] ?? '') ? Number(args[1]) : undefined;
      if (lines === undefined) await conn.line('-ERR TOP takes a message number and a line count');
      else await retrieve(conn, drop, args[0], lines);
      return true;
    }
    case 'DELE': {
      const n = messageNumber(args[0]);
      await conn.line(n !== undefined && drop.delete(n) ? `+OK message ${n} deleted` : '-ERR no such message');
      return true;
    }
    case 'RSET':
      drop.reset();
      await conn.line(`+OK maildrop has ${drop.live().length} messages`);
      return true;
    case 'NOOP':
      await conn.line('+OK');
      return true;
    default:
      return false;
  }
}

/** LIST and UIDL: one message with an argument, all of them as a multi-line response without. */
async function listing(
  conn: ImapConnection, drop: Maildrop, arg: string | undefined, value: (n: number, m: NonNullable<ReturnType<Maildrop['get']>>) => string,
): Promise<void> {
  if (arg === undefined) {
    const lines = drop.live().map(([n, m]) => `${n} ${value(n, m)}\r\n`);
    await conn.send(`+OK ${lines.length} messages\r\n`, ...lines, '.\r\n');
    return;
  }
  const n = messageNumber(arg);
  const message = n === undefined ? undefined : drop.get(n);
  await conn.line(message && n !== undefined ? `+OK ${n} ${value(n, message)}` : '-ERR no such message');
}

/** RETR (whole message) and TOP (`lines` body lines): +OK, the dot-stuffed bytes, ".". */
async function retrieve(conn: ImapConnection, drop: Maildrop, arg: string | undefined, lines: number | undefined): Promise<void> {
  const n = messageNumber(arg);
  const message = n === undefined ? undefined : drop.get(n);
  if (!message) {
    await conn.line('-ERR no such message');
    return;
  }
  const bytes = lines === undefined ? message.raw : topOf(message.raw, lines);
  await conn.send(`+OK ${message.raw.length} octets\r\n`, dotStuff(bytes), '.\r\n');
}

function messageNumber(arg: string | undefined): number | undefined {
  return arg !== undefined && /^[1-9]\d{0,8}$/.test(arg) ? Number(arg) : undefined;
}
