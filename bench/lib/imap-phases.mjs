// The IMAP measurements. A "path" is how a client reaches the mailbox: `direct` (TLS to the
// server, AUTHENTICATE XOAUTH2 with a token from the IdP) or `proxied` (plain TCP to the
// proxy on loopback, LOGIN with the local password). Both then speak the same commands.
import { performance } from 'node:perf_hooks';
import { RawImap } from './imap-client.mjs';
import { timed } from './interleave.mjs';
import { pool, sleep } from './stats.mjs';

/**
 * @typedef {{ name: string, target: { port: number, tls?: boolean, ca?: Buffer }, login: (c: RawImap) => Promise<unknown> }} ImapPath
 */

/** Connect, log in, SELECT INBOX, LOGOUT: milliseconds until LOGOUT's tagged OK. */
export async function timeOneLogin(path) {
  const started = performance.now();
  const client = await RawImap.connect(path.target);
  try {
    await path.login(client);
    await client.command('SELECT INBOX');
    await client.logout();
    const ms = performance.now() - started;
    await client.closed();
    return ms;
  } finally {
    client.destroy();
  }
}

/** `count` logins one after the other; the mean in ms. */
export async function loginRun(path, count) {
  let total = 0;
  for (let i = 0; i < count; i++) total += await timeOneLogin(path);
  return total / count;
}

/** Finds the big message once (sequence number and size) through `path`. */
export async function findBigMessage(path) {
  const client = await openSelected(path);
  try {
    return await client.largestMessage();
  } finally {
    client.destroy();
  }
}

async function openSelected(path) {
  const client = await RawImap.connect(path.target);
  try {
    await path.login(client);
    await client.command('SELECT INBOX');
    return client;
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/**
 * A bench session (bench/lib/interleave.mjs) whose step is one whole login: connect, log in,
 * SELECT INBOX, LOGOUT. Nothing stays open between steps.
 * @returns {Promise<import('./interleave.mjs').BenchSession>}
 */
export async function loginSession(path) {
  return {
    step: async () => ({ ms: await timeOneLogin(path), bytes: 0 }),
    close: async () => undefined,
  };
}

/**
 * A bench session that is one IMAP session, logged in with INBOX selected, whose step is one
 * FETCH of the big message.
 * @returns {(path: ImapPath) => Promise<import('./interleave.mjs').BenchSession>}
 */
export function fetchSession(big) {
  return async (path) => {
    const client = await openSelected(path);
    return {
      step: () => timed(async () => {
        const bytes = await client.fetchBody(big.sequence);
        if (bytes !== big.size) throw new Error(`FETCH returned ${bytes} bytes, expected ${big.size}`);
        return bytes;
      }),
      close: () => logoutAndDestroy(client),
    };
  };
}

async function logoutAndDestroy(client) {
  try {
    await client.logout();
    await client.closed();
  } finally {
    client.destroy();
  }
}

/**
 * Opens `count` sessions, each logged in, INBOX selected and in IDLE, at most `parallel` being
 * set up at a time. Returns the sessions that made it and the errors of those that did not.
 */
export async function openIdleSessions(path, count, parallel) {
  const { results, errors } = await pool(count, parallel, async () => {
    const client = await openSelected(path);
    try {
      return { client, idle: await client.idle() };
    } catch (err) {
      client.destroy();
      throw err;
    }
  });
  return { sessions: results.filter(Boolean), errors };
}

/**
 * Holds the sessions for `seconds`, sampling `sample()` once a second; then ends every IDLE
 * with DONE. A session is "up" when its DONE got the tagged OK through the whole path.
 */
export async function holdIdle(sessions, seconds, sample) {
  const samples = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    samples.push(sample());
    await sleep(Math.min(1000, Math.max(0, until - performance.now())));
  }
  samples.push(sample());
  const droppedDuringHold = sessions.filter((s) => s.client.wire.closed).length;
  const { errors } = await pool(sessions.length, sessions.length, (i) => sessions[i].idle.done());
  return { samples, droppedDuringHold, up: sessions.length - errors.length, errors };
}

/** Every client FETCHes the big message at the same moment; aggregate MB/s over the wall time. */
export async function concurrentFetch(clients, big) {
  const started = performance.now();
  const sizes = await Promise.all(clients.map((c) => c.fetchBody(big.sequence)));
  const seconds = (performance.now() - started) / 1000;
  const bytes = sizes.reduce((a, b) => a + b, 0);
  if (bytes !== big.size * clients.length) throw new Error(`concurrent FETCH returned ${bytes} bytes, expected ${big.size * clients.length}`);
  return { mbps: bytes / 1e6 / seconds, bytes };
}

/** Opens `count` logged-in sessions with INBOX selected (for the direct side of concurrency). */
export async function openSelectedSessions(path, count, parallel) {
  const { results, errors } = await pool(count, parallel, () => openSelected(path));
  if (errors.length > 0) throw new Error(`${errors.length} of ${count} ${path.name} sessions failed: ${errors[0].message}`);
  return results;
}
