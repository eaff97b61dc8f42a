#!/usr/bin/env node
// Where the machine's CPU goes during bulk transfer, direct and proxied: every process's CPU
// time per MB moved (from /proc, so the mail server's own processes count too: Dovecot's
// imap-login or pop3-login, which does its TLS, and imap or pop3; Postfix's smtpd, cleanup and
// virtual), and how many cores were busy. When the cores are nearly all busy, throughput is
// CPU-bound and proxied / direct follows the ratio of the two totals per MB; when they are
// not, the path is bound by waits, not by work. Runs alternate between the two paths, each
// moving the 10 MiB message N times in one session. Prints a table; writes nothing. Needs
// test/e2e/servers/up.sh. About 1 minute.
// Usage: node bench/cpu-share.mjs [--protocol pop3|imap|smtp] [--runs 4] [--times 10]
import { parseArgs } from 'node:util';
import { runWithE2eProxy } from './lib/e2e-script.mjs';
import { fetchSession, findBigMessage } from './lib/imap-phases.mjs';
import { retrSession, sendSession } from './lib/mail-phases.mjs';
import { bigMessage } from './lib/message.mjs';
import { allProcessCpu } from './lib/proc.mjs';
import { makePaths, removeDelivered } from './lib/sequential.mjs';
import { formatSummary, summarize } from './lib/stats.mjs';

const { values: args } = parseArgs({
  options: { protocol: { type: 'string', default: 'pop3' }, runs: { type: 'string', default: '4' }, times: { type: 'string', default: '10' } },
});
if (!['pop3', 'imap', 'smtp'].includes(args.protocol)) throw new Error(`--protocol must be pop3, imap or smtp, not ${args.protocol}`);
const runs = Number(args.runs);
const times = Number(args.times);
/** Processes below this share of a path's CPU are left out of the table. */
const NOISE_SHARE = 0.01;

/** CPU seconds per process name between two readings; the bench itself and the proxy by role. */
function cpuByName(before, after, proxyPid) {
  const byName = {};
  for (const [pid, { name, cpu }] of after) {
    const used = cpu - (before.get(pid)?.cpu ?? 0);
    if (used <= 0) continue;
    const key = pid === process.pid ? 'client (the bench)' : pid === proxyPid ? 'proxy' : name;
    byName[key] = (byName[key] ?? 0) + used;
  }
  return byName;
}

await runWithE2eProxy('cpu-share', [args.protocol], async ({ upstream, proxy }) => {
  const paths = makePaths(upstream, proxy)[args.protocol];
  const to = upstream.smtpRecipient ?? upstream.user;
  const subject = `omp-cpu-share ${new Date().toISOString()}`;
  const open = args.protocol === 'smtp' ? sendSession(bigMessage(to, undefined, subject), upstream.user, to)
    : args.protocol === 'pop3' ? retrSession : fetchSession(await findBigMessage(paths.direct));

  console.error(`cpu-share: ${args.protocol}, ${runs} runs of ${times} per path, alternating`);
  const results = { direct: [], proxied: [] };
  let sent = 0;
  for (let i = 0; i < runs; i++) {
    for (const name of i % 2 === 0 ? ['direct', 'proxied'] : ['proxied', 'direct']) {
      const session = await open(paths[name]);
      await session.step(); // warm: the login and the first transfer are not counted
      sent++;
      const before = allProcessCpu();
      const started = Date.now();
      let bytes = 0;
      for (let n = 0; n < times; n++, sent++) bytes += (await session.step()).bytes;
      const seconds = (Date.now() - started) / 1000;
      const byName = cpuByName(before, allProcessCpu(), proxy.pid);
      await session.close();
      results[name].push({ mbps: bytes / 1e6 / seconds, mb: bytes / 1e6, seconds, byName });
    }
  }
  if (args.protocol === 'smtp') await removeDelivered(upstream, subject, sent);
  printTable(results);
});

/** One row per process name: its CPU ms per MB moved on each path (median over the runs, min–max). */
function printTable(results) {
  const totalOf = (run) => Object.values(run.byName).reduce((a, b) => a + b, 0);
  const names = new Set();
  for (const run of [...results.direct, ...results.proxied]) {
    for (const [name, cpu] of Object.entries(run.byName)) if (cpu >= NOISE_SHARE * totalOf(run)) names.add(name);
  }
  const over = (path, value) => summarize(results[path].map(value));
  const perMb = (path, name) => over(path, (run) => ((run.byName[name] ?? 0) * 1000) / run.mb);
  const row = (label, direct, proxied, digits) => console.log(`| ${label} | ${formatSummary(direct, digits)} | ${formatSummary(proxied, digits)} |`);
  console.log('| Process | Direct: CPU ms per MB | Proxied: CPU ms per MB |');
  console.log('|---|---|---|');
  for (const name of [...names].sort((a, b) => perMb('proxied', b).median - perMb('proxied', a).median)) {
    row(name, perMb('direct', name), perMb('proxied', name), 2);
  }
  const total = (path) => over(path, (run) => (totalOf(run) * 1000) / run.mb);
  const busy = (path) => over(path, (run) => totalOf(run) / run.seconds);
  const mbps = (path) => over(path, (run) => run.mbps);
  row('**all processes**', total('direct'), total('proxied'), 2);
  row('cores busy', busy('direct'), busy('proxied'), 2);
  row('MB/s', mbps('direct'), mbps('proxied'), 0);
  console.log('');
  console.log(`proxied / direct: ${(mbps('proxied').median / mbps('direct').median).toFixed(3)} in MB/s, `
    + `${(total('direct').median / total('proxied').median).toFixed(3)} in CPU per MB (what a CPU-bound path would read)`);
}
