#!/usr/bin/env node
// How close can any login relay come to a direct IMAP login on this machine? Connect, log in,
// SELECT INBOX, LOGOUT, N times in a row per run, runs alternating between three paths to the
// end-to-end Dovecot:
//   direct     the client itself, TLS and AUTHENTICATE XOAUTH2 (the baseline of `npm run bench`);
//   forwarder  the client in plain TCP through bench/lib/login-forwarder.mjs: greeting, LOGIN,
//              verified TLS and XOAUTH2 upstream with a fixed token, then pipe(); nothing else;
//   proxied    the client through the proxy, as `npm run bench` measures it.
// forwarder / direct is the floor for a relay of this shape here; proxied / forwarder is what
// the proxy's own work per login costs (local password check, token manager, deadlines,
// logging, metrics). Prints a table; writes nothing. Needs test/e2e/servers/up.sh. About 1.5
// minutes.
// Usage: node bench/login-floor.mjs [--runs 5] [--logins 200]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runWithE2eProxy } from './lib/e2e-script.mjs';
import { alternateRuns, printFloorTable, startRelay } from './lib/floor.mjs';
import { loginRun } from './lib/imap-phases.mjs';
import { makePaths } from './lib/sequential.mjs';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, logins: { type: 'string', default: '200' } } });
const runs = Number(args.runs);
const logins = Number(args.logins);
const WARMUP_LOGINS = 10; // as `npm run bench`
const FORWARDER = fileURLToPath(new URL('./lib/login-forwarder.mjs', import.meta.url));

await runWithE2eProxy('login-floor', ['imap'], async ({ upstream, proxy, cleanups }) => {
  const env = { ...process.env, OMP_BENCH_USER: upstream.user, OMP_BENCH_TOKEN: upstream.accessToken };
  const forwarder = await startRelay(FORWARDER, [String(upstream.servers.imap.port), upstream.caFile], env);
  cleanups.push(() => forwarder.stop());

  const { direct, proxied } = makePaths(upstream, proxy).imap;
  const paths = { direct, forwarder: { name: 'forwarder', target: { port: forwarder.port }, login: proxied.login }, proxied };
  const pids = { forwarder: forwarder.pid, proxied: proxy.pid };

  console.error(`login-floor: ${WARMUP_LOGINS} logins to warm up, then ${runs} runs of ${logins} logins per path`);
  for (const path of Object.values(paths)) await loginRun(path, WARMUP_LOGINS);
  const measured = await alternateRuns(paths, pids, runs, async (path) => ({ value: await loginRun(path, logins), per: logins / 1000 }));
  printFloorTable(measured, { floor: 'forwarder', unit: 'ms per login', digits: 2, cpuUnit: 'CPU ms per login' });
});
