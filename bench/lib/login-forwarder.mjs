// The least an IMAP login relay of the proxy's shape can do: plain TCP in on loopback, a
// greeting, the client's LOGIN line (not checked: any password is taken), then verified TLS to
// one port with a shared SecureContext, AUTHENTICATE XOAUTH2 with one fixed token, the tagged
// OK, and bytes piped both ways. No logging, metrics, deadlines, token manager or local password
// check. bench/login-floor.mjs times its logins; bench/pipe-floor.mjs --protocol imap, its FETCHes
// (a bare pipe() after the login). Run as a child process (its CPU is read from /proc alone);
// prints its port on stdout.
// Usage: OMP_BENCH_USER=... OMP_BENCH_TOKEN=... node login-forwarder.mjs UPSTREAM_PORT CA_FILE
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { connect, createSecureContext, rootCertificates } from 'node:tls';

const [port, caFile] = [Number(process.argv[2]), process.argv[3]];
const { OMP_BENCH_USER: user, OMP_BENCH_TOKEN: token } = process.env;
// Like the proxy's: the system roots plus the CA file, built once.
const secureContext = createSecureContext({ minVersion: 'TLSv1.2', ca: [...rootCertificates, readFileSync(caFile, 'utf8')] });
const xoauth2 = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');

/** Calls `onLine` for each CRLF line until it returns false; then stops listening. */
function readLines(socket, onLine) {
  let text = '';
  const onData = (chunk) => {
    text += chunk.toString('latin1');
    for (let end = text.indexOf('\r\n'); end >= 0; end = text.indexOf('\r\n')) {
      const line = text.slice(0, end);
      text = text.slice(end + 2);
      if (onLine(line) === false) return socket.off('data', onData);
    }
  };
  socket.on('data', onData);
}

const server = createServer({ noDelay: true }, (client) => {
  client.on('error', () => client.destroy());
  client.write('* OK forwarder ready\r\n');
  readLines(client, (line) => {
    const tag = line.split(' ', 1)[0];
    client.pause();
    const upstream = connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext });
    upstream.setNoDelay(true);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let greeted = false;
    readLines(upstream, (reply) => {
      if (!greeted) {
        greeted = true;
        upstream.write(`A AUTHENTICATE XOAUTH2 ${xoauth2}\r\n`);
        return true;
      }
      if (!reply.startsWith('A ')) return true;
      if (!reply.startsWith('A OK')) {
        client.end(`${tag} NO upstream refused\r\n`);
        upstream.destroy();
        return false;
      }
      client.write(`${tag} OK LOGIN completed\r\n`);
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
      return false;
    });
    return false;
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
