import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientInfo } from '../../src/accounts/types.js';
import { parseListen } from '../../src/config/listen-address.js';
import { allowList, startListener, unwrapMapped, type ConnectionHandler, type Listener, type ListenerOptions } from '../../src/net/listener.js';
import { CLOSE_LINGER_MS } from '../../src/limits.js';
import { getTestCertificates } from '../fakes/certs.js';
import { captureLog, listenerConfig } from './helpers/imap-kit.js';

const listeners: Listener[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(listeners.splice(0).map((l) => l.close(500)));
});

/** Greets with "hello <address>" and waits for the client to close; ends its side at the client's FIN (half-open). */
const greeter: ConnectionHandler = async (socket, client) => {
  socket.write(`hello ${client.address}\n`);
  socket.once('end', () => socket.end());
  await new Promise((resolve) => socket.once('close', resolve).resume());
};

async function start(overrides: Parameters<typeof listenerConfig>[0], handle: ConnectionHandler = greeter, options: Omit<ListenerOptions, 'log'> = {}) {
  const logs = captureLog();
  const listener = await startListener(listenerConfig(overrides), handle, { log: logs.log, ...options });
  listeners.push(listener);
  return { listener, logs };
}

/** Connects and returns what the server says before closing or within 1 s. */
function dial(host: string, port: number): Promise<{ text: string; closed: boolean; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    sockets.push(socket);
    let text = '';
    const done = (closed: boolean) => resolve({ text, closed, socket });
    socket.on('data', (d) => {
      text += d.toString();
      if (text.endsWith('\n')) done(false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
    setTimeout(() => done(false), 1000);
  });
}

/** Connects and returns everything the server says until it closes (or 5 s pass). */
function dialToEnd(port: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ text, closed: true }));
    setTimeout(() => resolve({ text, closed: false }), 5000);
  });
}

describe('startListener', () => {
  it('serves IPv4 and IPv6 literal hosts', async () => {
    const v4 = await start({ listen: '127.0.0.1:0' });
    expect(v4.listener.address().host).toBe('127.0.0.1');
    expect((await dial('127.0.0.1', v4.listener.address().port)).text).toBe('hello 127.0.0.1\n');
    const v6 = await start({ listen: '[::1]:0' });
    expect((await dial('::1', v6.listener.address().port)).text).toBe('hello ::1\n');
  });

  it('unwraps IPv4-mapped addresses on a dual-stack socket and checks them against IPv4 CIDRs', async () => {
    const { listener } = await start({ listen: '[::]:0', allow: ['127.0.0.0/8'] });
    expect((await dial('127.0.0.1', listener.address().port)).text).toBe('hello 127.0.0.1\n');
  });

  it('closes connections from addresses outside the allow list without a word, and logs it', async () => {
    const handled: ClientInfo[] = [];
    const { listener, logs } = await start({ allow: ['10.0.0.0/8', '::1'] }, async (socket, client) => {
      handled.push(client);
      socket.destroy();
    }, { busyGreeting: 'busy' });
    const result = await dial('127.0.0.1', listener.address().port);
    expect(result).toMatchObject({ text: '', closed: true });
    expect(handled).toHaveLength(0);
    expect(logs.lines.find((l) => l.event === 'listener.refused')).toMatchObject({ client: '127.0.0.1', reason: 'address not in allow list' });
  });

  it('enforces max_connections_per_address and max_connections', async () => {
    const perAddress = await start({ max_connections_per_address: 2 });
    const port = perAddress.listener.address().port;
    const first = await dial('127.0.0.1', port);
    await dial('127.0.0.1', port);
    // Without a busy greeting (none given here), a refused connection is closed without a word.
    expect(await dial('127.0.0.1', port)).toMatchObject({ text: '', closed: true });
    expect(perAddress.listener.activeSessions()).toBe(2);
    first.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect((await dial('127.0.0.1', port)).text).toBe('hello 127.0.0.1\n');
    expect(perAddress.logs.lines.filter((l) => l.event === 'listener.refused')).toHaveLength(1);

    const total = await start({ max_connections: 1 });
    await dial('127.0.0.1', total.listener.address().port);
    expect(await dial('127.0.0.1', total.listener.address().port)).toMatchObject({ text: '', closed: true });
  });

  it("tells a connection over a cap the protocol's busy greeting, then closes it", async () => {
    const perAddress = await start({ max_connections_per_address: 1 }, greeter, { busyGreeting: '* BYE busy' });
    const port = perAddress.listener.address().port;
    await dial('127.0.0.1', port);
    expect(await dialToEnd(port)).toEqual({ text: '* BYE busy\r\n', closed: true });
    const total = await start({ max_connections: 1 }, greeter, { busyGreeting: '-ERR busy' });
    await dial('127.0.0.1', total.listener.address().port);
    expect(await dialToEnd(total.listener.address().port)).toEqual({ text: '-ERR busy\r\n', closed: true });
    expect(total.logs.lines.find((l) => l.event === 'listener.refused')).toMatchObject({ reason: 'listener is at max_connections (1)' });
  });

  it('cuts off a refused client that never closes CLOSE_LINGER_MS after the busy greeting', async () => {
    const { listener } = await start({ max_connections: 1 }, greeter, { busyGreeting: 'busy' });
    await dial('127.0.0.1', listener.address().port);
    // allowHalfOpen: this client keeps its side open after the proxy's FIN, and keeps sending.
    const socket = connect({ host: '127.0.0.1', port: listener.address().port, allowHalfOpen: true });
    sockets.push(socket);
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined);
    const pump = setInterval(() => socket.writable && socket.write('x'.repeat(1024)), 20);
    const started = Date.now();
    await new Promise((resolve) => socket.once('close', resolve));
    clearInterval(pump);
    expect(text).toBe('busy\r\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(CLOSE_LINGER_MS - 100);
    expect(Date.now() - started).toBeLessThan(CLOSE_LINGER_MS + 1500);
  });

  it('refuses silently on an implicit-TLS listener: no handshake for a refused client', async () => {
    const certs = getTestCertificates();
    const { listener } = await start({ tls: 'implicit', max_connections: 1 }, greeter, {
      busyGreeting: '* BYE busy', tls: { context: createSecureContext({ cert: certs.certPem, key: certs.keyPem }) },
    });
    const held = tlsConnect({ host: '127.0.0.1', port: listener.address().port, rejectUnauthorized: false });
    sockets.push(held);
    await new Promise((resolve) => held.once('data', resolve));
    expect(await dialToEnd(listener.address().port)).toEqual({ text: '', closed: true });
  });

  it('catches and logs what a session throws, and keeps serving', async () => {
    let calls = 0;
    const { listener, logs } = await start({}, async (socket) => {
      calls++;
      socket.write('x\n');
      throw new Error('boom');
    });
    expect(await dial('127.0.0.1', listener.address().port)).toMatchObject({ text: 'x\n' });
    expect(await dial('127.0.0.1', listener.address().port)).toMatchObject({ text: 'x\n' });
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(2);
    expect(logs.lines.filter((l) => l.event === 'session.error')).toHaveLength(2);
    expect(listener.activeSessions()).toBe(0);
  });

  it('on close, signals shutdown at once and the deadline after the grace period, and waits for the sessions to say goodbye', async () => {
    const aborted: Record<string, number> = {};
    const { listener } = await start({}, async (socket, _client, shutdown, deadline) => {
      shutdown.addEventListener('abort', () => (aborted.shutdown = Date.now()));
      deadline.addEventListener('abort', () => {
        aborted.deadline = Date.now();
        socket.end('bye\n');
      });
      socket.write('hi\n');
      await new Promise((resolve) => socket.once('close', resolve).resume());
    });
    const conn = await dial('127.0.0.1', listener.address().port);
    let said = '';
    conn.socket.on('data', (d: Buffer) => (said += d.toString()));
    const started = Date.now();
    await listener.close(300);
    expect((aborted.shutdown ?? Infinity) - started).toBeLessThan(100);
    expect((aborted.deadline ?? 0) - started).toBeGreaterThanOrEqual(250);
    // The session ended on its own after its goodbye: no CLOSE_LINGER_MS wait on top.
    expect(Date.now() - started).toBeLessThan(300 + CLOSE_LINGER_MS / 2);
    expect(said).toBe('bye\n');
    expect(listener.activeSessions()).toBe(0);
  });

  it('on close, cuts off a session that ignores both signals CLOSE_LINGER_MS after the deadline', async () => {
    const { listener } = await start({}, async (socket) => {
      socket.write('hi\n');
      await new Promise((resolve) => socket.once('close', resolve));
    });
    const conn = await dial('127.0.0.1', listener.address().port);
    const started = Date.now();
    await listener.close(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150 + CLOSE_LINGER_MS);
    expect(listener.activeSessions()).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(conn.socket.destroyed || conn.socket.readableEnded).toBe(true);
  });

  it('says which address is taken', async () => {
    const { listener } = await start({});
    await expect(startListener(listenerConfig({ listen: `127.0.0.1:${listener.address().port}` }), greeter, { log: captureLog().log }))
      .rejects.toMatchObject({ code: 'config_invalid', message: expect.stringContaining('EADDRINUSE') });
  });
});

describe('listener helpers', () => {
  it('parses host:port with IPv6 brackets', () => {
    expect(parseListen('127.0.0.1:1143')).toEqual({ host: '127.0.0.1', port: 1143 });
    expect(parseListen('[::1]:993')).toEqual({ host: '::1', port: 993 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
  });

  it('unwraps ::ffff: addresses only', () => {
    expect(unwrapMapped('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(unwrapMapped('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(unwrapMapped('2001:db8::1')).toBe('2001:db8::1');
  });

  it('builds an allow list of addresses and subnets of both families', () => {
    const list = allowList(['10.0.0.0/24', '192.168.1.7', '2001:db8::/32']);
    expect(list?.check('10.0.0.200', 'ipv4')).toBe(true);
    expect(list?.check('10.0.1.1', 'ipv4')).toBe(false);
    expect(list?.check('192.168.1.7', 'ipv4')).toBe(true);
    expect(list?.check('2001:db8:1::5', 'ipv6')).toBe(true);
    expect(allowList([])).toBeUndefined();
  });
});
