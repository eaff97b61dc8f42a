#!/usr/bin/env node
// How close can any relay come to a direct SMTP connection on this machine? SMTP bulk (the
// 10 MiB message, N times in one session), runs alternating between three paths to the
// end-to-end Postfix:
//   direct   the client itself, STARTTLS and AUTH XOAUTH2 (the baseline of `npm run bench`);
//   pipe     the client in plain TCP through a bare TLS-terminating pipe (bench/lib/tls-pipe.mjs)
//            to Postfix's implicit-TLS port: one more hop and the TLS, nothing else;
//   proxied  the client through the proxy, as `npm run bench` measures it.
// pipe / direct is the ceiling for a relay of this shape here; proxied / pipe is the proxy's own
// cost. Prints a table; writes nothing. Needs test/e2e/servers/up.sh. About 3 minutes.
// Usage: node bench/pipe-floor.mjs [--runs 5] [--messages 20]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alternateRuns, printFloorTable, startRelay } from './lib/floor.mjs';
import { smtpBulkRun } from './lib/mail-phases.mjs';
import { bigMessage } from './lib/message.mjs';
import { startProxy } from './lib/proxy.mjs';
import { hashLocalPassword, makePaths, removeDelivered } from './lib/sequential.mjs';
import { startUpstream } from './lib/upstream.mjs';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, messages: { type: 'string', default: '20' } } });
const runs = Number(args.runs);
const messages = Number(args.messages);
const PIPE = fileURLToPath(new URL('./lib/tls-pipe.mjs', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'omp-pipe-floor-'));
const cleanups = [];
try {
  const upstream = await startUpstream('e2e', join(dir, 'upstream'));
  cleanups.push(() => upstream.stop());
  if (!upstream.smtpImplicitTlsPort) throw new Error('the e2e servers have no implicit-TLS submission port (E2E_SUBMISSIONS_PORT)');
  const proxy = await startProxy(join(dir, 'proxy'), upstream, { protocols: ['smtp'], passwordHash: await hashLocalPassword(), connections: 10 });
  cleanups.push(() => proxy.stop());
  const pipe = await startRelay(PIPE, [String(upstream.smtpImplicitTlsPort), upstream.caFile]);
  cleanups.push(() => pipe.stop());

  const { direct, proxied } = makePaths(upstream, proxy).smtp;
  const paths = { direct, pipe: { name: 'pipe', target: { port: pipe.port }, login: direct.login }, proxied };
  const pids = { pipe: pipe.pid, proxied: proxy.pid };
  const to = upstream.smtpRecipient ?? upstream.user;
  const subject = `omp-pipe-floor ${new Date().toISOString()}`;
  const message = bigMessage(to, undefined, subject);

  console.error(`pipe-floor: warming up, then ${runs} runs of ${messages} messages per path`);
  for (const path of Object.values(paths)) await smtpBulkRun(path, message, upstream.user, to, messages);
  const measured = await alternateRuns(paths, pids, runs, async (path) => {
    const { mbps, bytes } = await smtpBulkRun(path, message, upstream.user, to, messages);
    return { value: mbps, per: bytes / 1e9 };
  });
  const removed = await removeDelivered(upstream, subject, messages * (3 + 3 * runs));
  console.error(`pipe-floor: removed ${removed} delivered messages`);

  printFloorTable(measured, { floor: 'pipe', unit: 'MB/s', digits: 0, cpuUnit: 'CPU s per GB' });
} catch (err) {
  console.error('pipe-floor failed:', err instanceof Error ? err.stack : err);
  process.exitCode = 1;
} finally {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
