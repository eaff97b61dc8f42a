#!/usr/bin/env node
// How close can any relay come to a direct connection on this machine? Bulk transfer of the
// 10 MiB message, N times in one session, runs alternating between three paths to the
// end-to-end servers:
//   direct   the client itself over TLS with XOAUTH2 (the baseline of `npm run bench`);
//   pipe     the client in plain TCP through a bare relay, one more hop and the TLS, nothing
//            else: for SMTP (the default) bench/lib/tls-pipe.mjs to Postfix's implicit-TLS
//            port; for POP3 (`--protocol pop3`, RETRs) the same pipe to Dovecot's POP3S port,
//            the client logging in itself as for SMTP; for IMAP (`--protocol imap`, FETCHes)
//            bench/lib/login-forwarder.mjs, which logs in to Dovecot with a fixed token and
//            then pipe()s both ways;
//   proxied  the client through the proxy, as `npm run bench` measures it.
// pipe / direct is the ceiling for a relay of this shape here; proxied / pipe is the proxy's own
// cost. Prints a table; writes nothing. Needs test/e2e/servers/up.sh. About 1 to 3 minutes.
// Usage: node bench/pipe-floor.mjs [--protocol smtp|pop3|imap] [--runs 5] [--times 20]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runWithE2eProxy } from './lib/e2e-script.mjs';
import { alternateRuns, printFloorTable, startRelay } from './lib/floor.mjs';
import { fetchSession, findBigMessage } from './lib/imap-phases.mjs';
import { bulkRun } from './lib/interleave.mjs';
import { retrSession, sendSession } from './lib/mail-phases.mjs';
import { bigMessage } from './lib/message.mjs';
import { makePaths, removeDelivered } from './lib/sequential.mjs';

const { values: args } = parseArgs({
  options: { protocol: { type: 'string', default: 'smtp' }, runs: { type: 'string', default: '5' }, times: { type: 'string', default: '20' } },
});
const runs = Number(args.runs);
const times = Number(args.times);
const TLS_PIPE = fileURLToPath(new URL('./lib/tls-pipe.mjs', import.meta.url));
const LOGIN_FORWARDER = fileURLToPath(new URL('./lib/login-forwarder.mjs', import.meta.url));
const PLANS = { smtp: smtpPlan, pop3: pop3Plan, imap: imapPlan };
if (!(args.protocol in PLANS)) throw new Error(`--protocol must be smtp, pop3 or imap, not ${args.protocol}`);

/** The bare TLS pipe to an implicit-TLS `port`, which relays the client's own (direct) login. */
async function throughTlsPipe(protocol, port, upstream, proxy) {
  const pipe = await startRelay(TLS_PIPE, [String(port), upstream.caFile]);
  const { direct, proxied } = makePaths(upstream, proxy)[protocol];
  return { relay: pipe, paths: { direct, pipe: { name: 'pipe', target: { port: pipe.port }, login: direct.login }, proxied } };
}

/** SMTP: sent messages are removed afterwards. */
async function smtpPlan(upstream, proxy) {
  if (!upstream.smtpImplicitTlsPort) throw new Error('the e2e servers have no implicit-TLS submission port (E2E_SUBMISSIONS_PORT)');
  const to = upstream.smtpRecipient ?? upstream.user;
  const subject = `omp-pipe-floor ${new Date().toISOString()}`;
  return {
    ...(await throughTlsPipe('smtp', upstream.smtpImplicitTlsPort, upstream, proxy)),
    open: sendSession(bigMessage(to, undefined, subject), upstream.user, to),
    async after() {
      const removed = await removeDelivered(upstream, subject, times * (3 + 3 * runs));
      console.error(`pipe-floor: removed ${removed} delivered messages`);
    },
  };
}

/** POP3: RETR deletes nothing. */
async function pop3Plan(upstream, proxy) {
  const server = upstream.servers.pop3;
  if (server?.tls !== 'implicit') throw new Error('the upstream has no implicit-TLS POP3 port');
  return { ...(await throughTlsPipe('pop3', server.port, upstream, proxy)), open: retrSession, async after() {} };
}

/** IMAP: the forwarder takes the proxy's LOGIN and logs in upstream itself. */
async function imapPlan(upstream, proxy) {
  const env = { ...process.env, OMP_BENCH_USER: upstream.user, OMP_BENCH_TOKEN: upstream.accessToken };
  const forwarder = await startRelay(LOGIN_FORWARDER, [String(upstream.servers.imap.port), upstream.caFile], env);
  const { direct, proxied } = makePaths(upstream, proxy).imap;
  return {
    relay: forwarder,
    paths: { direct, pipe: { name: 'pipe', target: { port: forwarder.port }, login: proxied.login }, proxied },
    open: fetchSession(await findBigMessage(direct)),
    async after() {},
  };
}

await runWithE2eProxy('pipe-floor', [args.protocol], async ({ upstream, proxy, cleanups }) => {
  const plan = await PLANS[args.protocol](upstream, proxy);
  cleanups.push(() => plan.relay.stop());

  console.error(`pipe-floor: ${args.protocol}, warming up, then ${runs} runs of ${times} per path`);
  for (const path of Object.values(plan.paths)) await bulkRun(plan.open, path, times);
  const pids = { pipe: plan.relay.pid, proxied: proxy.pid };
  const measured = await alternateRuns(plan.paths, pids, runs, async (path) => {
    const { mbps, bytes } = await bulkRun(plan.open, path, times);
    return { value: mbps, per: bytes / 1e9 };
  });
  await plan.after();

  printFloorTable(measured, { floor: 'pipe', unit: 'MB/s', digits: 0, cpuUnit: 'CPU s per GB' });
});
