import { createHash } from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { indexOfLfDot } from './dot-stuffing.js';

/**
 * The sha256 of the smtp-server DATA method this module was checked against (smtp-server
 * 3.21.6, locked in package-lock.json). Another release keeps its own method untouched until
 * someone reads it again, re-runs test/unit/smtp/data-scan.test.ts and updates this value.
 */
export const CHECKED_FEED_DATA_STREAM_SHA256 = '9d8b903f9a3a63542d72e19a9e2f67009a3b1107a28d57e8e7369355454ff230';

type Feed = SMTPStream['_feedDataStream'];

/** smtp-server's own DATA method, as loaded (kept for the chunks it still handles). */
export const originalFeedDataStream: Feed = SMTPStream.prototype._feedDataStream;

/** The fingerprint of a method's source, compared with CHECKED_FEED_DATA_STREAM_SHA256. */
export function sourceFingerprint(method: Feed): string {
  return createHash('sha256').update(method.toString()).digest('hex');
}

/**
 * smtp-server's DATA parser (SMTPStream._feedDataStream) walks every byte of a message in
 * JavaScript looking for a dot at the start of a line (about 2.5 s of the proxy's CPU per GB
 * sent), and copies every chunk once to put the 4 bytes it held back in front of it (another
 * 0.9 s per GB): a third of the proxy's SMTP path (`npm run bench -- --profile`,
 * docs/benchmarks.md). This puts a faster method in front of it.
 *
 * A chunk in which no line starts with a dot, nearly all of a message, is found by one native
 * search. It is then held back whole, and the chunk held before it is emitted whole: nothing
 * is copied, and what smtp-server would emit (everything but the last 4 bytes) has gone out by
 * the next chunk. Every other chunk (the end of the message, a stuffed dot, the first chunk of
 * a message, a chunk under 4 bytes) goes to smtp-server's own method, after the held chunk is
 * emitted but for its last 4 bytes: exactly the state smtp-server's own method would be in,
 * so the end-of-data and dot-unstuffing rules (and their defences against SMTP smuggling) stay
 * smtp-server's.
 *
 * Installed only when smtp-server's method is the one this was checked against: returns false
 * and changes nothing otherwise (slower, never wrong). Idempotent.
 */
export function installFastDataScan(): boolean {
  const proto = SMTPStream.prototype;
  if (proto._feedDataStream === feedDataStreamFast) return true;
  if (sourceFingerprint(proto._feedDataStream) !== CHECKED_FEED_DATA_STREAM_SHA256) return false;
  proto._feedDataStream = feedDataStreamFast;
  return true;
}

/** What smtp-server holds back of a chunk: the end-of-data sequence may straddle the next one. */
const KEPT_BYTES = 4;

/** `_feedDataStream` with a native search and no copy for the common case; see installFastDataScan. */
export function feedDataStreamFast(this: SMTPStream, chunk: Buffer, done: (err?: Error | null) => void): void {
  const held = this._lastBytes || EMPTY;
  if (this._atDataStart || chunk.length < KEPT_BYTES || stopsScan(held, chunk)) {
    if (held.length > KEPT_BYTES) {
      emit(this, held.subarray(0, held.length - KEPT_BYTES));
      this._lastBytes = held.subarray(held.length - KEPT_BYTES);
    }
    originalFeedDataStream.call(this, chunk, done);
    return;
  }
  this._lastBytes = chunk;
  if (held.length === 0 || emit(this, held)) {
    done();
    return;
  }
  waitForDrain(this, done);
}

const EMPTY = Buffer.alloc(0);

/**
 * Whether smtp-server's scan of `held` + `chunk` would stop at a dot after an LF, for the end
 * sequence or a stuffed dot. It looks at LF offsets 1 to length-4 of the two together; the
 * offsets before the last 3 of `held` were looked at when `held` came in (as part of the
 * chunk before, or because smtp-server keeps at most 4 bytes), so only the seam and `chunk`
 * are searched here.
 */
function stopsScan(held: Buffer, chunk: Buffer): boolean {
  const from = Math.max(1, held.length - 3);
  if (from < held.length) {
    const seam = Buffer.concat([held.subarray(from), chunk.subarray(0, 1)]);
    if (indexOfLfDot(seam) !== -1) return true;
  }
  const lf = indexOfLfDot(chunk, Math.max(0, from - held.length));
  return lf !== -1 && lf + 1 < chunk.length - 2;
}

/** Writes message bytes to the data stream and counts them, as smtp-server does; false when it is full. */
function emit(stream: SMTPStream, bytes: Buffer): boolean {
  stream._countDataBytes(bytes.length);
  const dataStream = stream._dataStream;
  if (!dataStream?.writable) return true;
  return dataStream.write(bytes) || dataStream.destroyed;
}

/** smtp-server's wait: on 'drain', or on 'close' (a stream that the application destroys never drains). */
function waitForDrain(stream: SMTPStream, done: (err?: Error | null) => void): void {
  const dataStream = stream._dataStream;
  if (!dataStream) {
    done();
    return;
  }
  const onDrain = (): void => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}
