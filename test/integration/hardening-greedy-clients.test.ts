import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { LOCAL_PASSWORD, USER, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Slow and greedy clients against the built proxy (issue 8, point 3): a client that sends a
 * byte a second, one that never reads, one that opens connections in a loop. The caps per
 * address and per listener hold, and a well-behaved client from another address is served
 * meanwhile with normal latency, measured against the same client before the attack.
 */

const PER_ADDRESS = 10;
const PER_LISTENER = 30;
let up: Upstreams;
let run: ProxyRun;
const attackers = new Set<Socket>();

beforeAll(async () => {
  up = await startUpstreams();
  const { dir, configPath } = writeProxyConfig(up, {
    listenerExtra: `    max_connections: ${PER_LISTENER}\n    max_connections_per_address: ${PER_ADDRESS}\n`,
  });
  run = await startProxy(configPath, dir);
});

afterAll(async () => {
  for (const s of attackers) s.destroy();
  await run.stop();
  await up.close();
});

/** A raw connection from `localAddress`; resolves with it and whether a greeting arrived within `ms`. */
async function open(localAddress: string, ms = 3000): Promise<{ socket: Socket; greeted: boolean }> {
  const socket = connect({ host: '127.0.0.1', port: run.port, localAddress });
  attackers.add(socket);
  socket.on('error', () => undefined);
  socket.on('close', () => attackers.delete(socket));
  const greeted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString('latin1').startsWith('* OK'));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  return { socket, greeted };
}

/** Greeting, LOGIN and SELECT of a well-behaved client from 127.0.0.2, in milliseconds. */
async function wellBehaved(tag: string): Promise<number> {
  const started = performance.now();
  const c = await WireClient.connect({ port: run.port, localAddress: '127.0.0.2' });
  try {
    expect(await c.readLine()).toMatch(/^\* OK/);
    expect((await c.command(`${tag}l`, `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`)).at(-1)).toMatch(/ OK /);
    expect((await c.command(`${tag}s`, 'SELECT INBOX')).at(-1)).toMatch(/ OK /);
    return performance.now() - started;
  } finally {
    c.close();
  }
}

async function median(tag: string, n = 5): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await wellBehaved(`${tag}${i}`));
  return times.sort((a, b) => a - b)[Math.floor(n / 2)] as number;
}

/** Log lines arrive asynchronously from the child process. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('slow and greedy clients', () => {
  it('holds the per-address cap against a connection loop, and serves another address at normal speed meanwhile', async () => {
    const baseline = await median('b');
    let open1 = 0;
    let maxOpen1 = 0;
    let refused = 0;
    let stop = false;
    // The loop: connect, keep what is accepted (until the idle timeout ends it), reconnect at once.
    const loop = (async () => {
      while (!stop) {
        const { socket, greeted } = await open('127.0.0.1', 3000);
        if (!greeted) {
          refused++;
          continue;
        }
        maxOpen1 = Math.max(maxOpen1, ++open1);
        socket.once('close', () => open1--);
      }
    })();
    // A client that sends a byte a second, and one that sends commands and never reads.
    const slow = await open('127.0.0.3');
    const trickle = setInterval(() => slow.socket.write('a'), 1000);
    const greedy = await open('127.0.0.4');
    greedy.socket.pause();
    const flood = Buffer.from('x CAPABILITY\r\n'.repeat(4096));
    const pump = setInterval(() => greedy.socket.writableLength < 64 * 1024 * 1024 && greedy.socket.write(flood), 5);
    /** Bytes the proxy's side took (the rest waits in our socket's buffer). */
    const accepted = (): number => greedy.socket.bytesWritten - greedy.socket.writableLength;
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const during = await median('d');
      // Generous: the attack may cost something, but not an order of magnitude.
      expect(during).toBeLessThan(Math.max(baseline * 5, baseline + 500));
      expect(maxOpen1).toBe(PER_ADDRESS);
      expect(refused).toBeGreaterThan(10);
      // A client that does not read its replies stops being read: what the proxy took no longer grows.
      const took = accepted();
      await new Promise((r) => setTimeout(r, 500));
      expect(accepted()).toBe(took);
      expect(took).toBeLessThan(32 * 1024 * 1024);
    } finally {
      stop = true;
      clearInterval(trickle);
      clearInterval(pump);
      await loop;
    }
    await until(() => run.events('listener.refused').filter((e) => e.client === '127.0.0.1').length > 10);
    const refusals = run.events('listener.refused').filter((e) => e.client === '127.0.0.1');
    expect(refusals.length).toBeGreaterThan(10);
    expect(String(refusals[0]?.reason)).toMatch(/max_connections_per_address \(10\)/);
    // The byte-a-second client never completes a command: the idle timeout (2 s) ends it.
    await new Promise<void>((resolve) => (slow.socket.closed ? resolve() : slow.socket.once('close', () => resolve())));
    // The one that never reads is ended too (idle timeout, a goodbye given up after 2 s, linger),
    // while it still holds the connection open.
    expect(greedy.socket.destroyed).toBe(false);
    await until(() => run.events('session.end').some((e) => e.client === '127.0.0.4'), 10_000);
  });

  it('holds the per-listener cap across addresses, and frees the slots when the sessions end', async () => {
    for (const s of attackers) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const held: Socket[] = [];
    for (let a = 10; a < 14; a++) {
      for (let i = 0; i < PER_ADDRESS; i++) {
        const { socket, greeted } = await open(`127.0.0.${a}`);
        if (greeted) held.push(socket);
      }
    }
    expect(held).toHaveLength(PER_LISTENER);
    expect((await open('127.0.0.20')).greeted).toBe(false);
    await until(() => run.events('listener.refused').some((e) => /max_connections \(30\)/.test(String(e.reason))));
    // Silent clients are closed by the idle timeout (2 s), and the listener takes new ones.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await open('127.0.0.20')).greeted).toBe(true);
  });
});
