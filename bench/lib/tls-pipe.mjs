// A bare TLS-terminating pipe, the least any relay of the proxy's shape can do: plain TCP in on
// loopback, verified TLS out to one port, bytes piped both ways, nothing read or parsed. Run as
// a child process (its CPU is read from /proc alone); prints its port on stdout.
// Usage: node tls-pipe.mjs UPSTREAM_PORT CA_FILE
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { connect, createSecureContext } from 'node:tls';

const [port, caFile] = [Number(process.argv[2]), process.argv[3]];
const secureContext = createSecureContext({ ca: readFileSync(caFile) });

const server = createServer((client) => {
  const upstream = connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext });
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
