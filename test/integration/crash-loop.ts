import { readdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { WireClient } from '../fakes/imap-wire-client.js';
import { LOCAL_PASSWORD, USER, readStore, startProxy, startUpstreams, writeProxyConfig, type ProxyRun, type Upstreams } from './harness.js';

/**
 * Kills the built proxy with SIGKILL at random moments while its refresh tokens rotate, and
 * after each kill checks what the token store holds (issue 8, point 5). Access tokens live one
 * second, so that every login a little later than half a second after the last refresh needs a
 * new one; two clients log in without pause, so refreshes (and rotations, and store writes)
 * happen all the time.
 *
 * After each kill the store must open, and its refresh token is classified:
 * - `ok`: the provider accepts it;
 * - `window`: the provider has already rotated it away (its successor exists) but the proxy died
 *   before the successor was durably stored: the one window no write order can close, since the
 *   provider answers before we can write. Only a grace period at the provider saves it.
 * - anything else (the store does not open, holds no token, or one the provider never heard of)
 *   is a bug.
 */

export interface CrashLoopOptions {
  kills: number;
  /** The provider's grace period for rotated-away refresh tokens (seconds). */
  graceSec: number;
  /** Random kill delay after the listener is up, in ms (default 50 to 150). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface CrashLoopResult {
  ok: number;
  /** Of the `ok` ones, those that worked only thanks to the grace period (already rotated away). */
  graceSaved: number;
  window: number;
  bugs: string[];
  /** Refresh requests the provider answered during the loop. */
  refreshes: number;
  /** Most temp files seen next to the store at once. */
  maxTempFiles: number;
  logs: string[];
}

export async function crashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const up = await startUpstreams({ rotateRefreshTokens: true, accessTokenLifetimeSec: 1, rotationGraceSec: options.graceSec });
  const result: CrashLoopResult = { ok: 0, graceSaved: 0, window: 0, bugs: [], refreshes: 0, maxTempFiles: 0, logs: [] };
  const { dir, configPath } = writeProxyConfig(up);
  const min = options.minDelayMs ?? 50;
  const max = options.maxDelayMs ?? 150;
  try {
    for (let i = 0; i < options.kills; i++) {
      const run = await startProxy(configPath, dir);
      const drivers = startDrivers(run, 2);
      await new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
      run.child.kill('SIGKILL');
      await once(run.child, 'exit');
      await drivers.stop();
      result.logs.push(...run.logs);
      const verdict = await inspect(up, dir);
      if (verdict === 'ok' || verdict === 'grace') {
        result.ok++;
        if (verdict === 'grace') result.graceSaved++;
      } else if (verdict === 'window') {
        result.window++;
        // The grant is gone, as it would be in production: a person would authorize again.
        writeFileSync(join(dir, 'alice.rt'), `${up.idp.issueRefreshToken(USER)}\n`);
      } else result.bugs.push(`kill ${i}: ${verdict}`);
      result.maxTempFiles = Math.max(result.maxTempFiles, readdirSync(join(dir, 'data')).filter((f) => f.endsWith('.tmp')).length);
    }
    result.refreshes = up.idp.count('token', 'refresh_token');
  } finally {
    await up.close();
  }
  return result;
}

async function inspect(up: Upstreams, dir: string): Promise<string> {
  let stored;
  try {
    stored = await readStore(dir);
  } catch (err) {
    return `the store does not open: ${String(err)}`;
  }
  const rt = stored?.refreshToken;
  if (!rt) return 'the store holds no refresh token';
  if (up.idp.isRefreshTokenActive(rt)) return up.idp.successorOf(rt) === undefined ? 'ok' : 'grace';
  return up.idp.successorOf(rt) !== undefined ? 'window' : 'the store holds a refresh token the provider never issued or revoked for another reason';
}

/** Clients that log in and out without pause until stopped; every error is expected (the proxy dies). */
function startDrivers(run: ProxyRun, count: number): { stop(): Promise<void> } {
  let stopped = false;
  const clients = new Set<WireClient>();
  const loops = Array.from({ length: count }, async () => {
    while (!stopped) {
      try {
        const c = await WireClient.connect({ port: run.port });
        clients.add(c);
        await c.readLine(2000);
        await c.command('a', `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`);
        c.close();
        clients.delete(c);
      } catch {
        if (run.child.exitCode !== null || run.child.signalCode !== null) return;
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      for (const c of clients) c.close();
      await Promise.all(loops);
    },
  };
}
