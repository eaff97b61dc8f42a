import { ProxyError } from '../errors.js';
import { MAX_PRELOGIN_COMMAND_BYTES, MAX_PRELOGIN_LITERAL_BYTES } from '../limits.js';
import type { ClientConnection } from '../net/client-connection.js';
import type { LineResult } from '../net/line-reader.js';
import { assembleCommand, guessTag, scanLine, type ImapCommand, type LiteralMarker, type Token } from './syntax.js';

export type CommandRead =
  | { kind: 'command'; command: ImapCommand }
  /** Reply with imapErrorReply(tag, error): `bad_input` answers BAD and goes on,
   * `limit_exceeded` answers and hangs up. */
  | { kind: 'error'; tag: string | undefined; error: ProxyError }
  | { kind: 'eof' };

/**
 * Reads one whole pre-login command: its first line, and for every literal the bytes and the
 * line that follows. A synchronising literal `{n}` gets our "+" first (RFC 3501 section 7.5);
 * a LITERAL+ `{n+}` does not (RFC 7888). Limits: MAX_PRELOGIN_LINE_BYTES per line (the
 * reader's), MAX_PRELOGIN_LITERAL_BYTES per literal, MAX_PRELOGIN_COMMAND_BYTES in all.
 */
export async function readCommand(conn: ClientConnection, signal: AbortSignal): Promise<CommandRead> {
  const tokens: Token[] = [];
  let tag: string | undefined;
  let total = 0;
  let next = await conn.reader.readLine(signal);
  for (let continuation = false; ; continuation = true) {
    if (next.kind !== 'line') return lineProblem(next, tag);
    total += next.line.length;
    const scan = scanLine(next.line, continuation);
    tokens.push(...scan.tokens);
    tag ??= firstTag(tokens) ?? (continuation ? undefined : guessTag(next.line));
    if (!scan.ok) return { kind: 'error', tag, error: new ProxyError('bad_input', scan.error) };
    if (!scan.literal) break;
    total += scan.literal.size;
    const refused = refuseLiteral(scan.literal, total, tag);
    if (refused) return refused;
    if (!scan.literal.nonSynchronizing) await conn.send('+ Ready for literal data', signal);
    const bytes = await conn.reader.readBytes(scan.literal.size, signal);
    if (!bytes) return { kind: 'eof' };
    tokens.push({ type: 'string', value: bytes.toString('utf8'), literal: true });
    next = await conn.reader.readLine(signal);
  }
  const assembled = assembleCommand(tokens);
  if (!assembled.ok) return { kind: 'error', tag: assembled.tag, error: new ProxyError('bad_input', assembled.error) };
  return { kind: 'command', command: assembled.command };
}

/**
 * An oversized `{n}` is refused with BAD before the client sends it, and the session goes on.
 * An oversized `{n+}` is already on its way: reading and dropping it would still let a client
 * make us read without bound, so we answer and hang up (RFC 7888 section 4 allows either).
 */
function refuseLiteral(literal: LiteralMarker, total: number, tag: string | undefined): CommandRead | undefined {
  if (literal.size <= MAX_PRELOGIN_LITERAL_BYTES && total <= MAX_PRELOGIN_COMMAND_BYTES) return undefined;
  const message = `Literal too large (at most ${MAX_PRELOGIN_LITERAL_BYTES} bytes before login)`;
  const code = literal.nonSynchronizing ? 'limit_exceeded' : 'bad_input';
  return { kind: 'error', tag, error: new ProxyError(code, message) };
}

function lineProblem(result: Exclude<LineResult, { kind: 'line' }>, tag: string | undefined): CommandRead {
  if (result.kind === 'eof') return { kind: 'eof' };
  // An over-long line may be followed by more of it: answer and hang up (limit_exceeded).
  return { kind: 'error', tag: tag ?? guessTag(result.head), error: new ProxyError('limit_exceeded', 'Line too long') };
}

function firstTag(tokens: readonly Token[]): string | undefined {
  const first = tokens[0];
  return first?.type === 'atom' ? guessTag(Buffer.from(`${first.value} `, 'latin1')) : undefined;
}
