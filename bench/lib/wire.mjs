// The benchmark's raw-socket plumbing: connect (plain or verified TLS) and a line reader
// that can skip counted bytes without copying them, so that the measuring client costs as
// little CPU as possible on a 2-core machine. No protocol knowledge here.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';

/** Every wait of the benchmark client ends after this, so nothing can hang the run. */
export const WAIT_TIMEOUT_MS = 120_000;

/**
 * Opens a TCP or TLS connection to 127.0.0.1 (loopback only) and resolves once it is ready.
 * @param {{ port: number, tls?: boolean, ca?: string | Buffer, servername?: string }} target
 * @returns {Promise<import('node:net').Socket>}
 */
export function openSocket(target) {
  return new Promise((resolve, reject) => {
    const socket = target.tls
      ? tlsConnect({ host: '127.0.0.1', port: target.port, secureContext: secureContextFor(target.ca), servername: target.servername ?? 'localhost' })
      : netConnect({ host: '127.0.0.1', port: target.port });
    socket.setNoDelay(true);
    const onError = (err) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once(target.tls ? 'secureConnect' : 'connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

const contexts = new Map();

/** One SecureContext per CA, as a well-written client (and the proxy) keeps it. */
function secureContextFor(ca) {
  let context = contexts.get(ca);
  if (!context) {
    context = createSecureContext({ ca, minVersion: 'TLSv1.2' });
    contexts.set(ca, context);
  }
  return context;
}

/**
 * Splits a socket's input into lines (latin1 strings without CRLF). After a line, the owner may
 * ask (from `onLine`) to skip a number of bytes (an IMAP literal) or to scan for a terminator
 * (a POP3 multi-line body): those bytes are only counted, never copied or decoded.
 */
export class LineSocket {
  /** @param {import('node:net').Socket} socket @param {(line: string) => void} onLine */
  constructor(socket, onLine) {
    this.socket = socket;
    this.onLine = onLine;
    /** Bytes received in skipped or scanned regions since the last reset. */
    this.bodyBytes = 0;
    this.received = 0;
    this.closed = false;
    /** @type {Buffer[]} */
    this.partial = [];
    this.skip = 0;
    /** @type {null | { tail: Buffer, done: () => void }} */
    this.scan = null;
    /** @type {Set<(err: Error) => void>} */
    this.onFail = new Set();
    socket.on('data', (chunk) => this.#data(chunk));
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => {
      this.closed = true;
      for (const fail of this.onFail) fail(new Error('connection closed'));
      resolve(undefined);
    }));
  }

  /** Skips the next `count` bytes (counted in bodyBytes). */
  skipBytes(count) {
    this.skip = count;
  }

  /** Counts bytes up to and including "\r\n.\r\n" (RFC 1939 multi-line end), then calls `done`. */
  scanToDotLine(done) {
    this.scan = { tail: Buffer.from('\r\n'), done };
  }

  write(text) {
    this.socket.write(text);
  }

  /** @param {Buffer} chunk */
  #data(chunk) {
    this.received += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        this.bodyBytes += n;
        at += n;
        continue;
      }
      if (this.scan) {
        at = this.#scanChunk(chunk, at);
        continue;
      }
      const lf = chunk.indexOf(10, at);
      if (lf === -1) {
        this.partial.push(chunk.subarray(at));
        return;
      }
      const piece = chunk.subarray(at, lf);
      const whole = this.partial.length === 0 ? piece : Buffer.concat([...this.partial, piece]);
      this.partial = [];
      at = lf + 1;
      const end = whole.length > 0 && whole[whole.length - 1] === 13 ? whole.length - 1 : whole.length;
      this.onLine(whole.toString('latin1', 0, end));
    }
  }

  /** Looks for CRLF.CRLF across chunk boundaries (keeping the last 4 bytes seen). */
  #scanChunk(chunk, at) {
    const scan = /** @type {{ tail: Buffer, done: () => void }} */ (this.scan);
    const joined = Buffer.concat([scan.tail, chunk.subarray(at, Math.min(chunk.length, at + 4))]);
    let found = joined.indexOf('\r\n.\r\n');
    let end;
    if (found !== -1) {
      end = at + (found + 5 - scan.tail.length);
    } else {
      found = chunk.indexOf('\r\n.\r\n', at);
      end = found === -1 ? -1 : found + 5;
    }
    if (end === -1) {
      this.bodyBytes += chunk.length - at;
      const rest = chunk.length - at >= 4 ? chunk.subarray(chunk.length - 4) : Buffer.concat([scan.tail, chunk.subarray(at)]);
      scan.tail = Buffer.from(rest.subarray(Math.max(0, rest.length - 4)));
      return chunk.length;
    }
    this.bodyBytes += end - at;
    this.scan = null;
    scan.done();
    return end;
  }
}

/**
 * Resolves when `test` accepts a line fed to `feed`; rejects on close or after WAIT_TIMEOUT_MS.
 * @template T
 * @param {LineSocket} wire
 * @param {Array<(line: string) => boolean>} waiters
 * @param {(line: string) => T | undefined} test
 * @returns {Promise<T>}
 */
export function waitForLine(wire, waiters, test, what = 'a reply') {
  return new Promise((resolve, reject) => {
    if (wire.closed) {
      reject(new Error(`connection closed before ${what}`));
      return;
    }
    const timer = setTimeout(() => finish(new Error(`no ${what} within ${WAIT_TIMEOUT_MS} ms`)), WAIT_TIMEOUT_MS);
    const fail = (err) => finish(new Error(`${err.message} before ${what}`));
    const waiter = (line) => {
      let result;
      try {
        result = test(line);
      } catch (err) {
        finish(err);
        return true;
      }
      if (result === undefined) return false;
      finish(undefined, result);
      return true;
    };
    const finish = (err, result) => {
      clearTimeout(timer);
      wire.onFail.delete(fail);
      const i = waiters.indexOf(waiter);
      if (i !== -1) waiters.splice(i, 1);
      if (err) reject(err);
      else resolve(result);
    };
    wire.onFail.add(fail);
    waiters.push(waiter);
  });
}
