// The in-process fakes as the benchmark's upstream, run in a child process of their own so
// that the server's CPU is not charged to the measuring client and the proxy (separate
// processes, as in real life): the project's mock identity provider and demo IMAP server
// (implicit TLS with a self-signed certificate the proxy and the direct client verify), plus
// the POP3 and SMTP fakes when the build has them (see PROTOCOL_FAKES).
//
// Started by run.mjs with fork(); sends one `ready` message describing itself, then serves
// until it gets `stop`, its parent goes away, or MAX_LIFETIME_MS passes.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bigMessage } from './message.mjs';

const DIST = new URL('../../dist/', import.meta.url);
const MAX_LIFETIME_MS = 30 * 60_000;
const USER = process.env.BENCH_USER ?? 'bench@example.com';

const { startMockIdp } = await import(new URL('demo/mock-idp.js', DIST).href);
const { startDemoImapServer, buildMessage } = await import(new URL('demo/imap-server.js', DIST).href);
const { ensureSelfSignedCertificate } = await import(new URL('net/local-tls.js', DIST).href);

const dir = process.argv[2];
if (!dir) throw new Error('usage: fake-upstream.mjs <work dir>');

const tls = await ensureSelfSignedCertificate(join(dir, 'upstream-tls'));
const cert = await readFile(tls.certFile);
const key = await readFile(tls.keyFile);
const idp = await startMockIdp({ accessTokenLifetimeSec: 4 * 3600 });
const big = bigMessage(USER);
const imap = await startDemoImapServer({
  tls: 'implicit',
  cert,
  key,
  validateToken: (user, token) => idp.validateAccessToken(token) === user,
  mailboxes: { [USER]: [buildMessage({ to: USER, subject: 'small one' }), big, buildMessage({ to: USER, subject: 'small two' })] },
});

const closers = [() => imap.close(), () => idp.close()];
const servers = { imap: { port: imap.port, tls: 'implicit' } };
for (const fake of PROTOCOL_FAKES()) {
  const started = await fake.start({ cert, key, user: USER, idp, bigMessage: big, dir });
  if (!started) continue;
  servers[fake.protocol] = started.server;
  closers.push(started.close);
}

process.send?.({
  type: 'ready',
  kind: 'fake',
  description: 'in-process fakes (src/demo: mock IdP, demo IMAP server' + (servers.pop3 ? ', POP3 fake' : '') + (servers.smtp ? ', SMTP fake' : '') + ') in a child process',
  user: USER,
  caFile: tls.certFile,
  tokenUrl: idp.tokenUrl,
  refreshToken: idp.issueRefreshToken(USER),
  accessToken: idp.issueAccessToken(USER),
  bigMessageBytes: big.length,
  servers,
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled(closers.map((close) => close()));
  process.exit(0);
}
process.on('message', (m) => m?.type === 'stop' && void stop());
process.on('disconnect', () => void stop());
setTimeout(() => void stop(), MAX_LIFETIME_MS).unref();

/**
 * The POP3 and SMTP upstream fakes, each enabled when its module is in dist/. To add one, give
 * it a `start` that returns `{ server: { port, tls }, close }` or undefined.
 */
function PROTOCOL_FAKES() {
  return [
    { protocol: 'pop3', start: startPop3Fake },
    { protocol: 'smtp', start: startSmtpFake },
  ];
}

async function startPop3Fake({ cert, key, user, idp, bigMessage: message }) {
  const file = new URL('demo/pop3-server.js', DIST);
  if (!existsSync(file)) return undefined;
  const mod = await import(file.href);
  const start = mod.startDemoPop3Server ?? mod.startPop3Server;
  if (typeof start !== 'function') return undefined;
  const server = await start({
    tls: 'implicit',
    cert,
    key,
    validateToken: (u, token) => idp.validateAccessToken(token) === u,
    mailboxes: { [user]: [message] },
  });
  return { server: { port: server.port, tls: 'implicit' }, close: () => server.close() };
}

async function startSmtpFake({ cert, key, idp }) {
  const file = new URL('demo/smtp-server.js', DIST);
  if (!existsSync(file)) return undefined;
  const mod = await import(file.href);
  const start = mod.startDemoSmtpServer ?? mod.startSmtpServer;
  if (typeof start !== 'function') return undefined;
  const server = await start({
    tls: 'implicit',
    cert,
    key,
    validateToken: (u, token) => idp.validateAccessToken(token) === u,
  });
  // Count accepted messages without keeping 10 MB copies of each.
  server.keepMessages = false;
  return { server: { port: server.port, tls: 'implicit' }, close: () => server.close() };
}
