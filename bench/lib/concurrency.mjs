// Measurement 3 of issue 7 on a fresh proxy process: thousands of idle IMAP sessions in IDLE
// (proxy RSS per session, none dropped), then many sessions fetching the 10 MB message at
// once, proxied and direct. Always against the in-process fake IMAP server: the end-to-end
// Dovecot allows 100 connections per user and address (mail_max_userip_connections).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { concurrentFetch, findBigMessage, holdIdle, loginRun, openIdleSessions, openSelectedSessions } from './imap-phases.mjs';
import { cpuSeconds, ownCpuSeconds, rssKb } from './proc.mjs';
import { PROXY_NODE_FLAGS, startProxy } from './proxy.mjs';
import { cpuMeter, hashLocalPassword, makePaths } from './sequential.mjs';
import { sleep, summarize } from './stats.mjs';

/** Sessions being set up at the same time (the login of each costs a TLS handshake upstream). */
const SETUP_PARALLEL = 50;
const WARMUP_LOGINS = 20;

export async function measureConcurrency({ upstream, dir, plan, nodeArgs, cleanups, log }) {
  const connections = plan.idleSessions + plan.concurrent + 100;
  const proxy = await startProxy(join(dir, 'proxy-concurrency'), upstream, {
    protocols: ['imap'], passwordHash: await hashLocalPassword(), connections, nodeArgs,
  });
  cleanups.push(() => proxy.stop());
  const paths = makePaths(upstream, proxy).imap;
  const big = await findBigMessage(paths.direct);
  await loginRun(paths.proxied, WARMUP_LOGINS);
  await sleep(2000);
  const rssBefore = rssKb(proxy.pid);

  log(`idle: opening ${plan.idleSessions} IDLE sessions through the proxy`);
  const setupStart = performance.now();
  const cpuBeforeSetup = cpuSeconds(proxy.pid);
  const opened = await openIdleSessions(paths.proxied, plan.idleSessions, SETUP_PARALLEL);
  const setup = { seconds: (performance.now() - setupStart) / 1000, proxyCpu: cpuSeconds(proxy.pid) - cpuBeforeSetup };
  const closeAll = () => opened.sessions.forEach((s) => s.client.destroy());
  cleanups.push(async () => closeAll());
  log(`idle: ${opened.sessions.length} open (${opened.errors.length} failed) in ${setup.seconds.toFixed(1)} s; holding ${plan.holdSeconds} s`);
  const held = await holdIdle(opened.sessions, plan.holdSeconds, () => rssKb(proxy.pid));
  const rssHeld = held.samples[held.samples.length - 1];
  if (plan.heapSnapshot) await snapshot(proxy.pid, log);
  const idle = {
    requested: plan.idleSessions,
    opened: opened.sessions.length,
    setupErrors: opened.errors.length,
    firstSetupError: opened.errors[0]?.message,
    droppedDuringHold: held.droppedDuringHold,
    up: held.up,
    firstHoldError: held.errors[0]?.message,
    holdSeconds: plan.holdSeconds,
    rssBeforeKb: rssBefore,
    rssHeldKb: rssHeld,
    rssPeakKb: Math.max(...held.samples),
    kbPerSession: (rssHeld - rssBefore) / Math.max(1, opened.sessions.length),
    /** Per-session kB at each of the once-a-second samples of the hold. */
    kbPerSessionSamples: summarize(held.samples.map((rss) => (rss - rssBefore) / Math.max(1, opened.sessions.length))),
    setup,
  };
  log(`idle: ${idle.up}/${idle.requested} up after ${plan.holdSeconds} s; ${idle.kbPerSession.toFixed(1)} kB proxy RSS per session`);

  log(`concurrent: ${plan.concurrentReps} runs of ${plan.concurrent} sessions fetching at once, per path`);
  const live = opened.sessions.filter((s) => !s.client.wire.closed).slice(0, plan.concurrent).map((s) => s.client);
  const direct = await openSelectedSessions(paths.direct, plan.concurrent, SETUP_PARALLEL);
  cleanups.push(async () => direct.forEach((c) => c.destroy()));
  const meter = cpuMeter(proxy.pid, upstream.pid);
  const runs = { direct: [], proxied: [] };
  for (let i = 0; i < plan.concurrentReps; i++) {
    for (const name of i % 2 === 0 ? ['direct', 'proxied'] : ['proxied', 'direct']) {
      const clients = name === 'direct' ? direct : live;
      runs[name].push(await meter(() => concurrentFetch(clients, big).then(({ mbps, bytes }) => ({ value: mbps, bytes }))));
    }
  }
  const rssAfterFetch = rssKb(proxy.pid);
  direct.forEach((c) => c.destroy());
  closeAll();
  const problems = proxy.records().filter((r) => r.level >= 40);
  await proxy.stop();
  log(`floor: what ${plan.idleSessions} bare TLS and plain connections cost a Node process`);
  idle.floor = await measureFloor(upstream, plan.idleSessions);
  return {
    idle,
    concurrent: { sessions: live.length, runs, rssAfterFetchKb: rssAfterFetch },
    proxyWarnings: problems.length,
    proxyWarningSample: problems.slice(0, 3),
    clientCpuNow: ownCpuSeconds(),
  };
}

/** Asks the proxy (started with --heapsnapshot-signal=SIGUSR2) for a heap snapshot and waits a bit for it. */
async function snapshot(pid, log) {
  process.kill(pid, 'SIGUSR2');
  log('heap snapshot requested; waiting 20 s for it to be written');
  await sleep(20_000);
}

/** Runs tls-floor.mjs against the fake IMAP server (TLS) and a greeting-only plain server. */
async function measureFloor(upstream, count) {
  const plain = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write('* OK hello\r\n');
  });
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  // With the proxy's node flags: the young generation's size is part of what a connection costs.
  const child = fork(new URL('./tls-floor.mjs', import.meta.url).pathname, [
    String(upstream.servers.imap.port), upstream.caFile, String(plain.address().port), String(count),
  ], { execArgv: PROXY_NODE_FLAGS });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    const [result] = await Promise.race([once(child, 'message'), once(child, 'exit').then(() => [undefined])]);
    return result;
  } finally {
    clearTimeout(timer);
    child.kill();
    plain.close();
  }
}
