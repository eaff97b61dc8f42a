// Measurements 1, 2 and 4 of issue 7 on one proxy process: sequential logins and bulk
// transfer in one session, for every protocol the build and the upstream offer, direct and
// proxied taking turns at every login or message (bench/lib/interleave.mjs) so that the
// machine's drift and background load hit both alike.
import { join } from 'node:path';
import { RawImap } from './imap-client.mjs';
import { fetchSession, findBigMessage, loginRun, loginSession } from './imap-phases.mjs';
import { interleave } from './interleave.mjs';
import { retrSession, sendSession } from './mail-phases.mjs';
import { bigMessage } from './message.mjs';
import { cpuSeconds, cpuTimes, ownCpuSeconds } from './proc.mjs';
import { LOCAL_PASSWORD, startProxy } from './proxy.mjs';

const MAIL_PROTOCOLS = ['pop3', 'smtp'];
const WARMUP_LOGINS = 10;
/** Unmeasured turns per path before each bulk measurement (a first FETCH finds cold code). */
const WARMUP_STEPS = 2;
const DELIVERY_WAIT_MS = 120_000;

export async function measureLoginAndBulk({ upstream, dir, plan, nodeArgs, cleanups, log, protocols = MAIL_PROTOCOLS }) {
  const wanted = MAIL_PROTOCOLS.filter((p) => protocols.includes(p));
  const { proxy, unavailable } = await startAvailableProxy(upstream, join(dir, 'proxy-sequential'), nodeArgs, log, wanted);
  cleanups.push(() => proxy.stop());
  const paths = makePaths(upstream, proxy);
  const meter = cpuMeter(proxy.pid, upstream.pid);

  const big = await findBigMessage(paths.imap.direct);
  log(`big message: #${big.sequence}, ${big.size} bytes`);
  for (const path of Object.values(paths.imap)) await loginRun(path, WARMUP_LOGINS);

  log(`login: ${plan.reps} rounds of ${plan.logins} sequential logins per path, taking turns`);
  const login = withValue(await interleave(plan.reps, paths.imap, loginSession, plan.logins, meter), loginMs);

  const bulk = {};
  log(`IMAP bulk: ${plan.reps} rounds of ${plan.fetches} FETCHes per path, taking turns`);
  await interleave(1, paths.imap, fetchSession(big), WARMUP_STEPS, meter);
  bulk.imap = withValue(await interleave(plan.reps, paths.imap, fetchSession(big), plan.fetches, meter), megabytesPerSecond);

  for (const protocol of MAIL_PROTOCOLS) {
    if (!paths[protocol]) {
      bulk[protocol] = { unavailable: unavailable[protocol] };
      continue;
    }
    log(`${protocol.toUpperCase()} bulk: ${plan.reps} rounds of ${plan.fetches} messages per path, taking turns`);
    const subject = `omp-bench ${new Date().toISOString()}`;
    const open = protocol === 'pop3' ? retrSession : smtpSession(upstream, subject);
    await interleave(1, paths[protocol], open, WARMUP_STEPS, meter);
    bulk[protocol] = withValue(await interleave(plan.reps, paths[protocol], open, plan.fetches, meter), megabytesPerSecond);
    if (protocol === 'smtp' && upstream.kind === 'e2e') {
      const removed = await removeDelivered(upstream, subject, 2 * (plan.fetches * plan.reps + WARMUP_STEPS));
      log(`SMTP: removed ${removed} delivered benchmark messages from ${upstream.smtpRecipient}'s mailbox`);
    }
  }
  const problems = proxy.records().filter((r) => r.level >= 40);
  await proxy.stop();
  return { login, bulk, bigMessageBytes: big.size, proxyWarnings: problems.length, proxyWarningSample: problems.slice(0, 3) };
}

/** Each round of `interleave` with its figure as `value`, for the report. */
function withValue(rounds, figure) {
  return { direct: rounds.direct.map((r) => ({ ...r, value: figure(r) })), proxied: rounds.proxied.map((r) => ({ ...r, value: figure(r) })) };
}

const loginMs = (round) => round.ms / round.steps;
const megabytesPerSecond = (round) => round.bytes / 1e3 / round.ms;

function smtpSession(upstream, subject) {
  const to = upstream.smtpRecipient ?? upstream.user;
  return sendSession(bigMessage(to, undefined, subject), upstream.user, to);
}

/**
 * The real Postfix delivers what the SMTP measurement sent (hundreds of 10 MB messages) to a
 * Dovecot mailbox the end-to-end tests share: wait for the deliveries (at most DELIVERY_WAIT_MS)
 * and delete them again over IMAP. Returns how many were deleted.
 */
export async function removeDelivered(upstream, subject, expected) {
  const user = upstream.smtpRecipient;
  const client = await RawImap.connect({ port: upstream.servers.imap.port, tls: true, ca: upstream.ca });
  try {
    await client.authenticateXOAuth2(user, await upstream.accessTokenFor(user));
    await client.command('SELECT INBOX');
    const deadline = Date.now() + DELIVERY_WAIT_MS;
    let found = [];
    for (;;) {
      const lines = [];
      await client.command(`UID SEARCH SUBJECT "${subject}"`, lines);
      found = lines.flatMap((l) => (/^\* SEARCH/i.test(l) ? l.split(' ').slice(2).filter(Boolean) : []));
      if (found.length >= expected || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (found.length > 0) {
      await client.command(`UID STORE ${found.join(',')} +FLAGS.SILENT (\\Deleted)`);
      await client.command('EXPUNGE');
    }
    await client.logout();
    return found.length;
  } finally {
    client.destroy();
  }
}

/**
 * Starts the proxy with a listener for every protocol the upstream has; a protocol this build
 * of the proxy refuses ("not available yet") is dropped and reported as such.
 */
async function startAvailableProxy(upstream, dir, nodeArgs, log, wanted) {
  const passwordHash = await hashLocalPassword();
  const unavailable = {};
  for (const p of MAIL_PROTOCOLS) {
    if (!wanted.includes(p)) unavailable[p] = 'not measured in this run (--protocols)';
    else if (!upstream.servers[p]) unavailable[p] = `no ${p.toUpperCase()} upstream (${upstream.kind === 'fake' ? `dist/demo has no ${p}-server.js yet` : 'not configured'})`;
  }
  let protocols = ['imap', ...wanted.filter((p) => upstream.servers[p])];
  for (let attempt = 0; ; attempt++) {
    try {
      const proxy = await startProxy(join(dir, String(attempt)), upstream, { protocols, passwordHash, connections: 100, nodeArgs });
      return { proxy, protocols, unavailable };
    } catch (err) {
      const refused = /(pop3|smtp) listeners are not available/.exec(String(err?.message));
      if (!refused || attempt > MAIL_PROTOCOLS.length) throw err;
      unavailable[refused[1]] = `this build of the proxy has no ${refused[1].toUpperCase()} listener yet`;
      log(`${refused[1]}: ${unavailable[refused[1]]}`);
      protocols = protocols.filter((p) => p !== refused[1]);
    }
  }
}

export async function hashLocalPassword() {
  const { hashPassword } = await import(new URL('../../dist/accounts/password.js', import.meta.url).href);
  const { Secret } = await import(new URL('../../dist/secret.js', import.meta.url).href);
  return hashPassword(new Secret(LOCAL_PASSWORD));
}

/** Direct and proxied paths per protocol the proxy serves. */
export function makePaths(upstream, proxy) {
  const { user, accessToken, ca } = upstream;
  const paths = {};
  for (const [protocol, port] of Object.entries(proxy.ports)) {
    const server = upstream.servers[protocol];
    paths[protocol] = {
      direct: {
        name: 'direct',
        target: { port: server.port, tls: true, starttls: server.tls === 'starttls', ca },
        login: (c) => c.authenticateXOAuth2(user, accessToken),
      },
      proxied: { name: 'proxied', target: { port }, login: (c) => c.login(user, LOCAL_PASSWORD) },
    };
  }
  return paths;
}

/** CPU seconds spent by the proxy, this client and the upstream (when it is our child) during `fn`. */
export function cpuMeter(proxyPid, upstreamPid) {
  return async (fn) => {
    const before = { proxy: cpuTimes(proxyPid), client: ownCpuSeconds(), upstream: upstreamPid ? cpuSeconds(upstreamPid) : 0 };
    const result = await fn();
    const proxy = cpuTimes(proxyPid);
    return {
      ...result,
      cpu: {
        proxy: proxy.user + proxy.system - before.proxy.user - before.proxy.system,
        proxyKernel: proxy.system - before.proxy.system,
        client: ownCpuSeconds() - before.client,
        upstream: upstreamPid ? cpuSeconds(upstreamPid) - before.upstream : undefined,
      },
    };
  };
}
