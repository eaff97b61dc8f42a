import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ListenerConfig } from '../../src/config/schema.js';
import { ProxyError } from '../../src/errors.js';
import type { AccountRegistry } from '../../src/accounts/registry.js';
import type { Config } from '../../src/config/resolve.js';
import { ListenerSet } from '../../src/listener-set.js';
import { reloadApp } from '../../src/reload.js';
import type { TokenManager } from '../../src/tokens/types.js';
import { startListener, type ConnectionHandler } from '../../src/net/listener.js';
import { captureLog, listenerConfig } from './helpers/imap-kit.js';

/**
 * A reload that moves or changes a listener must not lose it (a black-box finding: moving a
 * listener to a busy port left the proxy without it). Real sockets on 127.0.0.1 throughout.
 */
const greeter: ConnectionHandler = async (socket) => {
  socket.end('hello\n');
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A plain TCP server holding a port, as another program on the box would. */
async function occupyPort(port = 0): Promise<Server> {
  const server = createServer((s) => s.destroy());
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The first line a listener sends, or the connect error's code. */
async function greeting(port: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  try {
    const [data] = (await once(socket, 'data')) as [Buffer];
    return data.toString().trim();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'error';
  } finally {
    socket.destroy();
  }
}

function listenerSet(open: (config: ListenerConfig) => Promise<void> = async () => {}) {
  const captured = captureLog();
  const set = new ListenerSet(async (config) => {
    await open(config);
    return { listener: await startListener(config, greeter, { log: captured.log }) };
  }, captured.log);
  cleanups.push(() => set.close(100));
  const portOf = (protocol: string): number => set.running.find((r) => r.config.protocol === protocol)!.listener.address().port;
  return { set, captured, portOf };
}

describe('ListenerSet reload', () => {
  it('keeps the old listener serving when its new address is busy, and says why at error level', async () => {
    const { set, captured, portOf } = listenerSet();
    await set.startAll([listenerConfig({ listen: '127.0.0.1:0' })]);
    const oldPort = portOf('imap');
    const busy = (await occupyPort()).address() as AddressInfo;

    const changes = await set.apply([listenerConfig({ listen: `127.0.0.1:${busy.port}` })]);

    expect(await greeting(oldPort)).toBe('hello');
    expect(changes).toMatchObject({ started: [], stopped: [], failed: [`imap 127.0.0.1:${busy.port}`], retained: ['imap 127.0.0.1:0'] });
    expect(set.running.map((r) => r.config.listen)).toEqual(['127.0.0.1:0']);
    const failure = captured.lines.find((l) => l.event === 'listener.start_failed');
    expect(failure).toMatchObject({ level: 50, listen: `127.0.0.1:${busy.port}`, err: expect.stringContaining('EADDRINUSE') });
    expect(String(failure?.msg)).toMatch(/EADDRINUSE.*imap 127\.0\.0\.1:0 keeps serving/);
  });

  it('binds the new address before the old listener stops', async () => {
    const newPort = await freePort();
    let oldAnswered: string | undefined;
    const { set, portOf } = listenerSet(async (config) => {
      if (config.listen === `127.0.0.1:${newPort}`) oldAnswered = await greeting(oldPort);
    });
    await set.startAll([listenerConfig({ listen: '127.0.0.1:0' })]);
    const oldPort = portOf('imap');

    const changes = await set.apply([listenerConfig({ listen: `127.0.0.1:${newPort}` })]);

    expect(oldAnswered).toBe('hello');
    expect(changes).toMatchObject({ started: [`imap 127.0.0.1:${newPort}`], stopped: ['imap 127.0.0.1:0'], failed: [], retained: [] });
    expect(await greeting(newPort)).toBe('hello');
    expect(await greeting(oldPort)).toBe('ECONNREFUSED');
  });

  it('on the same address stops the old one first, and restarts it when the new one cannot start', async () => {
    const port = await freePort();
    const { set, captured } = listenerSet(async (config) => {
      if (config.max_connections === 7) throw new ProxyError('config_invalid', 'certificate files not usable');
    });
    const listen = `127.0.0.1:${port}`;
    await set.startAll([listenerConfig({ listen })]);

    // A changed setting on the same port: the port must be freed before the new one binds.
    const moved = await set.apply([listenerConfig({ listen, max_connections: 5 })]);
    expect(moved).toMatchObject({ started: [`imap ${listen}`], stopped: [`imap ${listen}`], failed: [] });
    expect(await greeting(port)).toBe('hello');

    const changes = await set.apply([listenerConfig({ listen, max_connections: 7 })]);

    expect(await greeting(port)).toBe('hello');
    expect(set.running.map((r) => r.config.max_connections)).toEqual([5]);
    expect(changes).toMatchObject({ started: [], stopped: [], failed: [`imap ${listen}`], retained: [`imap ${listen}`] });
    expect(captured.lines.find((l) => l.event === 'listener.start_failed')).toMatchObject({ level: 50, err: 'certificate files not usable' });
    expect(captured.lines.find((l) => l.event === 'listener.restored')).toMatchObject({ level: 40, listen });
  });

  it('makes the reload summary a warning that names the listener that failed', async () => {
    const { set, captured } = listenerSet();
    const config = (listeners: ListenerConfig[]): Config => ({ listeners, accounts: [], tokenStore: { path: 'x', keyFile: 'y' }, log: { level: 'debug' } });
    const before = config([listenerConfig({ listen: '127.0.0.1:0' })]);
    await set.startAll(before.listeners);
    const busy = (await occupyPort()).address() as AddressInfo;
    const targets = {
      accounts: { replace: () => {} } as unknown as AccountRegistry,
      tokens: { replaceAccounts: async () => ({ added: [], removed: [], changed: [] }) } as unknown as TokenManager,
      listeners: set,
      log: captured.log,
    };

    await reloadApp(before, config([listenerConfig({ listen: `127.0.0.1:${busy.port}` })]), targets);

    const summary = captured.lines.find((l) => l.event === 'config.reload');
    expect(summary).toMatchObject({ level: 40 });
    expect(String(summary?.msg)).toContain(`1 FAILED: imap 127.0.0.1:${busy.port} (still serving as before: imap 127.0.0.1:0)`);
  });
});
