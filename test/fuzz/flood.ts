import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A greedy client that pours bytes into a listener as fast as the proxy takes them (with
 * backpressure on our side, so that our own buffers do not count), while the process's memory
 * is sampled. If the proxy buffered what it does not need, the growth would be the flood's size.
 */

setFlagsFromString('--expose-gc');
// V8 frees the backing stores of dead ArrayBuffers (every socket read is one) on a background
// thread after a collection, so process.memoryUsage().arrayBuffers right after gc() still counts
// chunks that are garbage; on two busy cores that lag reached 30 MB of a 64 MB flood and failed
// the bound in CI. Sweeping them during the collection makes the figure what is still referenced.
setFlagsFromString('--no-concurrent-array-buffer-sweeping');
const gc = runInNewContext('gc') as () => void;

export interface FloodResult {
  /** Bytes the proxy accepted before it hung up (or the flood ended). */
  sent: number;
  /** Highest heap + ArrayBuffer memory during the flood, minus the level before it. */
  peakGrowthBytes: number;
  closedByServer: boolean;
  reply: string;
  socket: Socket;
}

function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export interface FloodOptions {
  /** Read the server's replies (default true); false is a client that never reads. */
  read?: boolean;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Leave the connection open (and unread) after the flood; the caller destroys `socket`. */
  keepOpen?: boolean;
}

/**
 * Connects to `port`, sends `prefix`, then `unit` over and over up to `totalBytes`, and goes on
 * after the server's goodbye for as long as the server still takes bytes (it drains a client
 * for a while after hanging up, so that its last reply is not lost to a reset).
 */
export async function flood(port: number, prefix: Buffer, unit: Buffer, totalBytes: number, options: FloodOptions = {}): Promise<FloodResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  gc();
  const baseline = memory();
  let peak = baseline;
  // A full collection before each sample: what is measured is what is still referenced, not
  // garbage that the collector has not got round to yet.
  const sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, memory());
  }, 100);
  // Half-open: the flood goes on after the server's FIN, as a hostile client's would.
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => undefined);
  let reply = '';
  // Every client reads the greeting (smtp-server hangs up on one that talks first); a client
  // that never reads stops there.
  const greeted = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.on('data', (d: Buffer) => {
    if (reply.length < 4096) reply += d.toString('latin1');
    if (!(options.read ?? true)) socket.pause();
  });
  let closedByServer = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.once('end', () => (closedByServer = true));
  const deadline = Date.now() + timeoutMs;
  let sent = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    await Promise.race([greeted, closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
    sent += await write(socket, prefix);
    while (sent < totalBytes && socket.writable && Date.now() < deadline) {
      sent += await write(socket, unit);
    }
  } finally {
    if (!options.keepOpen) {
      socket.end();
      if (options.read ?? true) await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
      socket.destroy();
    }
    clearInterval(sampler);
  }
  gc();
  peak = Math.max(peak, memory());
  return { sent, peakGrowthBytes: peak - baseline, closedByServer, reply, socket };
}

/** Writes one chunk and waits for room when the socket's buffer is full. Returns its size, or 0 when the socket is gone. */
function write(socket: Socket, chunk: Buffer): Promise<number> {
  if (socket.destroyed || !socket.writable) return Promise.resolve(0);
  if (socket.write(chunk)) return Promise.resolve(chunk.length);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(), 1000);
    const done = (): void => {
      clearTimeout(timer);
      socket.off('drain', done);
      socket.off('close', done);
      resolve(chunk.length);
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
