import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireClient } from '../fakes/imap-wire-client.js';
import { LOCAL_PASSWORD, USER, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Bad input before login: every case gets a clear BAD/NO or a timed-out close, the proxy keeps
 * serving other clients, and the upstream server never sees a connection.
 */

let up: Upstreams;
let run: ProxyRun;

beforeAll(async () => {
  up = await startUpstreams();
  const { dir, configPath } = writeProxyConfig(up);
  run = await startProxy(configPath, dir);
});

afterAll(async () => {
  await run.stop();
  await up.close();
});

async function connect(): Promise<WireClient> {
  const c = await WireClient.connect({ port: run.port });
  expect(await c.readLine()).toMatch(/^\* OK/);
  return c;
}

/** A well-behaved client still gets in. */
async function expectStillServing(): Promise<void> {
  const c = await connect();
  expect((await c.command('ok1', 'NOOP')).at(-1)).toMatch(/^ok1 OK/);
  c.close();
}

describe('bad input before login', () => {
  it('a 100 kB line gets BAD (or a BYE) and nothing reaches the server', async () => {
    const c = await connect();
    c.send(`x1 LOGIN ${'a'.repeat(100 * 1024)} pw\r\n`);
    const reply = await c.readLine();
    expect(reply).toMatch(/^(x1 BAD|\* BAD|\* BYE)/);
    c.close();
    await expectStillServing();
  });

  it('a literal announcing 2 GB gets BAD without waiting for it', async () => {
    const c = await connect();
    c.send(`x2 LOGIN ${USER} {2147483648}\r\n`);
    expect(await c.readLine()).toMatch(/^x2 BAD/);
    c.close();
    await expectStillServing();
  });

  it('invalid base64 in AUTHENTICATE gets BAD', async () => {
    const c = await connect();
    expect((await c.command('x3', 'AUTHENTICATE PLAIN !!!notbase64!!!')).at(-1)).toMatch(/^x3 BAD/);
    c.send('x4 AUTHENTICATE PLAIN\r\n');
    expect(await c.readLine()).toMatch(/^\+/);
    c.send('%%%\r\n');
    expect(await c.readLine()).toMatch(/^x4 BAD/);
    c.send('x5 AUTHENTICATE PLAIN\r\n');
    await c.readLine();
    c.send('*\r\n');
    expect(await c.readLine()).toMatch(/^x5 BAD/);
    c.close();
  });

  it('NUL bytes in a command get BAD', async () => {
    const c = await connect();
    c.send(`x6 LOGIN ${USER} "pa\0ss"\r\n`);
    expect(await c.readLine()).toMatch(/^x6 BAD/);
    c.close();
  });

  it('commands out of order or unknown get BAD, and too many bad commands end the session', async () => {
    const c = await connect();
    expect((await c.command('y1', 'SELECT INBOX')).at(-1)).toMatch(/^y1 (BAD|NO)/);
    expect((await c.command('y2', 'FROBNICATE')).at(-1)).toMatch(/^y2 BAD/);
    for (let i = 0; i < 10 && !c.isClosed; i++) {
      c.send(`z${i} FROBNICATE\r\n`);
      const line = await c.readLine().catch(() => '');
      if (line.startsWith('* BYE')) break;
    }
    await waitClosed(c);
  });

  it('a client that connects and sends nothing is closed with BYE after the idle timeout', async () => {
    const c = await connect();
    const started = Date.now();
    expect(await c.readLine(8000)).toMatch(/^\* BYE/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    await waitClosed(c);
  });

  it('no bad input opened an upstream connection, and the right password still works', async () => {
    expect(up.imap.stats.connections).toBe(0);
    const c = await connect();
    expect((await c.command('w1', `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`)).at(-1)).toMatch(/^w1 OK/);
    c.close();
    expect(up.imap.stats.connections).toBe(1);
  });
});

async function waitClosed(c: WireClient): Promise<void> {
  for (let i = 0; i < 200 && !c.isClosed; i++) await new Promise((r) => setTimeout(r, 25));
  expect(c.isClosed).toBe(true);
}
