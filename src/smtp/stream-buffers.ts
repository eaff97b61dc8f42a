import { getDefaultHighWaterMark, setDefaultHighWaterMark } from 'node:stream';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { SMTP_DATA_BUFFER_BYTES, SMTP_PARSER_BUFFER_BYTES } from '../limits.js';

/**
 * smtp-server reads a client through two streams it makes with Node's default high-water mark:
 * the command parser the socket is piped into (SMTPConnection._createParser, again after
 * STARTTLS) and the PassThrough that carries a DATA to our onData (SMTPStream.startDataMode).
 * That default (16 kB on Node 20, 64 kB from Node 22) is no more than one socket read. Our
 * reader (transaction.ts) takes each piece a turn of the event loop later, as an async iterator
 * does, so every read left the DATA stream "full": the parser waited for its 'drain', the next
 * read found the parser full too, and the pipe paused the client socket and resumed it a turn
 * later. That is two epoll_ctl calls per read (942 for 30 MB; 186 with room) and one upstream
 * write per read. With room for a few reads the proxy spent 15-30 % less CPU per GB on SMTP
 * DATA and came 0.03-0.04 closer to the direct connection's throughput (docs/benchmarks.md).
 *
 * Neither stream takes an option for it, so each of the two methods runs with Node's default
 * raised for its own synchronous call, which makes that one stream, and set back right after:
 * no other stream in the process changes. Memory stays bounded: the marks are a few hundred kB
 * per session (src/limits.ts), and backpressure still pauses the client when the upstream is slow.
 *
 * Changes nothing and returns false when smtp-server no longer has one of the two methods
 * (slower, never wrong). Idempotent.
 */
export function installStreamBuffers(): boolean {
  const connection = SMTPConnection.prototype;
  const stream = SMTPStream.prototype;
  if (typeof connection._createParser !== 'function' || typeof stream.startDataMode !== 'function') return false;
  if (!WRAPPED.has(connection._createParser)) connection._createParser = withHighWaterMark(connection._createParser, SMTP_PARSER_BUFFER_BYTES);
  if (!WRAPPED.has(stream.startDataMode)) stream.startDataMode = withHighWaterMark(stream.startDataMode, SMTP_DATA_BUFFER_BYTES);
  return true;
}

/** The wrappers this module made, so that a second install does not wrap them again. */
const WRAPPED = new WeakSet<object>();

/** `make`, run with Node's default high-water mark for byte streams set to `bytes` for the call. */
export function withHighWaterMark<T, A extends unknown[], R>(make: (this: T, ...args: A) => R, bytes: number): (this: T, ...args: A) => R {
  const wrapped = function (this: T, ...args: A): R {
    const before = getDefaultHighWaterMark(false);
    setDefaultHighWaterMark(false, bytes);
    try {
      return make.apply(this, args);
    } finally {
      setDefaultHighWaterMark(false, before);
    }
  };
  WRAPPED.add(wrapped);
  return wrapped;
}
