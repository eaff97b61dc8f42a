import { createHash } from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/** A line-initial dot: what smtp-server's DATA parser looks for, one byte at a time. */
const LF_DOT = Buffer.from('\n.');

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
 * JavaScript looking for a dot at the start of a line: about 2.5 s of the proxy's CPU per GB
 * sent, a third of its SMTP path (`npm run bench -- --profile`, docs/benchmarks.md). This puts a
 * faster method in front of it. A chunk in which no line starts with a dot, nearly all of a
 * message, is found by one native search and handled exactly as smtp-server's own method
 * handles a chunk whose scan found nothing (keep the last 4 bytes, emit the rest, wait for
 * drain). Every other chunk (the end of the message, a stuffed dot, the first chunk of a
 * message) goes to smtp-server's own method unchanged, so the end-of-data and dot-unstuffing
 * rules (and their defences against SMTP smuggling) stay smtp-server's.
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

/** `_feedDataStream` with a native search for the common case; see installFastDataScan. */
export function feedDataStreamFast(this: SMTPStream, input: Buffer, done: (err?: Error | null) => void): void {
  // The original's first step, done here so that the search sees the same bytes it would.
  let chunk = input;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  if (this._atDataStart || hasLineStartDot(chunk)) {
    originalFeedDataStream.call(this, chunk, done);
    return;
  }
  emitAllButLastBytes(this, chunk, done);
}

/**
 * Whether the original's scan (offsets 2 to length-3, a dot right after an LF) would stop in
 * this chunk: for the end-of-data sequence or for a stuffed dot.
 */
function hasLineStartDot(chunk: Buffer): boolean {
  const lf = chunk.indexOf(LF_DOT, 1);
  return lf !== -1 && lf + 1 < chunk.length - 2;
}

/**
 * The original's path after a scan that found nothing: the last 4 bytes are kept (the end
 * sequence may straddle the next chunk), the rest is emitted, and the parser waits for the
 * data stream to drain when it is full.
 */
function emitAllButLastBytes(stream: SMTPStream, chunk: Buffer, done: (err?: Error | null) => void): void {
  const dataStream = stream._dataStream;
  const kept = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  stream._lastBytes = kept;
  if (kept.length >= chunk.length || !dataStream?.writable) {
    if (kept.length < chunk.length) stream._countDataBytes(chunk.length - kept.length);
    done();
    return;
  }
  const emitted = chunk.subarray(0, chunk.length - kept.length);
  stream._countDataBytes(emitted.length);
  if (dataStream.write(emitted) || dataStream.destroyed) {
    done();
    return;
  }
  // A stream that the application destroys never drains, it only closes.
  const onDrain = (): void => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}
