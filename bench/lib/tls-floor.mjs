// What a connection costs Node itself, for comparison with the proxy's RSS per session: the
// RSS per connection of a process that holds nothing but `count` verified TLS client
// connections to the upstream (what the proxy holds per session toward the server), then
// `count` plain TCP connections (what it holds toward the client). Run by concurrency.mjs, with
// the node flags the proxy runs with:
//
//   node tls-floor.mjs <tls port> <ca file> <plain port> <count>   (sends one message, exits)
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createSecureContext } from 'node:tls';

const [tlsPort, caFile, plainPort, countArg] = process.argv.slice(2);
const count = Number(countArg);
const WARMUP = 20;
const PARALLEL = 50;

function rssKb() {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
}

const context = createSecureContext({ ca: readFileSync(caFile), minVersion: 'TLSv1.2' });

/** Opens one connection and resolves once the server's greeting has arrived. */
function open(tls) {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port: Number(tlsPort), secureContext: context, servername: 'localhost' })
      : netConnect({ host: '127.0.0.1', port: Number(plainPort) });
    socket.once('error', reject);
    socket.once('data', () => resolve(socket));
  });
}

async function perConnection(tls) {
  for (let i = 0; i < WARMUP; i++) (await open(tls)).destroy();
  await new Promise((r) => setTimeout(r, 500));
  const before = rssKb();
  const held = [];
  for (let i = 0; i < count; i += PARALLEL) {
    held.push(...(await Promise.all(Array.from({ length: Math.min(PARALLEL, count - i) }, () => open(tls)))));
  }
  for (const socket of held) socket.on('data', () => undefined);
  await new Promise((r) => setTimeout(r, 1000));
  const kb = (rssKb() - before) / count;
  for (const socket of held) socket.destroy();
  return kb;
}

const tlsKb = await perConnection(true);
const plainKb = await perConnection(false);
process.send?.({ tlsKb, plainKb, node: process.version, openssl: process.versions.openssl });
process.disconnect?.();
