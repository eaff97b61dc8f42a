import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PASSWORD, USER, accountYaml, corpProviderYaml, startProxy, startUpstreams, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Connections the built proxy refuses before any session (SPEC section 5: never a silent
 * disconnect). Over a listener's caps, a plaintext listener answers in its protocol's own words
 * and closes; an address outside `allow`, and any client of an implicit-TLS listener, is closed
 * without a word (docs/decisions.md).
 */

let up: Upstreams;
let run: ProxyRun;
const sockets: Socket[] = [];

beforeAll(async () => {
  up = await startUpstreams({}, 'implicit', { tls: 'implicit' });
  const dir = mkdtempSync(join(tmpdir(), 'omp-refusals-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, `
listeners:
  - { protocol: imap, listen: 127.0.0.1:0, max_connections: 1 }
  - { protocol: pop3, listen: 127.0.0.1:0, max_connections_per_address: 1 }
  - { protocol: smtp, listen: 127.0.0.1:0, max_connections: 1 }
  - { protocol: imap, listen: 127.0.0.1:0, allow: [10.0.0.0/8] }
  - { protocol: imap, listen: 127.0.0.1:0, tls: implicit, max_connections: 1 }
${corpProviderYaml(up)}accounts:
${accountYaml(up, USER, LOCAL_PASSWORD)}token_store: { path: ./data/tokens.enc, key_file: ./data/tokens.key }
log: { level: debug, format: json }
`);
  run = await startProxy(configPath, dir);
  await run.waitForEvents('listener.start', 5);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await run.stop();
  await up.close();
});

/** The port of the n-th listener of the config. */
function port(n: number): number {
  return Number(run.events('listener.start')[n]?.port);
}

/** A connection that is let in: resolves once its greeting has arrived, and is kept open. */
async function held(portNumber: number, greeting: RegExp, tls = false): Promise<void> {
  const socket = tls ? tlsConnect({ host: '127.0.0.1', port: portNumber, rejectUnauthorized: false }) : connect({ host: '127.0.0.1', port: portNumber });
  sockets.push(socket);
  socket.on('error', () => undefined);
  const [data] = (await new Promise((resolve) => socket.once('data', (d: Buffer) => resolve([d])))) as [Buffer];
  expect(data.toString('latin1')).toMatch(greeting);
}

/** Everything a new connection hears before the proxy closes it. */
function refusedWith(portNumber: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: portNumber });
    sockets.push(socket);
    let text = '';
    const timer = setTimeout(() => reject(new Error(`not closed within 5 s; heard ${JSON.stringify(text)}`)), 5000);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

describe('connections over a cap, outside allow, or on an implicit-TLS listener', () => {
  it('IMAP over max_connections: * BYE as the greeting, then close', async () => {
    await held(port(0), /^\* OK /);
    expect(await refusedWith(port(0))).toBe('* BYE Too many connections, try again later\r\n');
  });

  it('POP3 over max_connections_per_address: -ERR [SYS/TEMP] as the greeting, then close', async () => {
    await held(port(1), /^\+OK /);
    expect(await refusedWith(port(1))).toBe('-ERR [SYS/TEMP] Too many connections, try again later\r\n');
  });

  it('SMTP over max_connections: a 421 greeting, then close', async () => {
    await held(port(2), /^220 /);
    expect(await refusedWith(port(2))).toBe('421 4.7.0 Too many connections, try again later\r\n');
  });

  it('an address outside allow hears nothing, and neither does a refused client of an implicit-TLS listener', async () => {
    expect(await refusedWith(port(3))).toBe('');
    await held(port(4), /^\* OK /, true);
    expect(await refusedWith(port(4))).toBe('');
    const reasons = run.events('listener.refused').map((e) => String(e.reason));
    expect(reasons).toEqual(expect.arrayContaining(['address not in allow list', 'listener is at max_connections (1)']));
  });
});
