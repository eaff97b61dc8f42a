// The frame of the side scripts (pipe-floor, login-floor, cpu-share): the end-to-end servers
// and the proxy started in a temporary directory, everything stopped and removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy } from './proxy.mjs';
import { hashLocalPassword } from './sequential.mjs';
import { startUpstream } from './upstream.mjs';

/**
 * Runs `main({ upstream, proxy, cleanups })` with the end-to-end servers (test/e2e/servers/up.sh
 * must have started them) and a proxy serving `protocols`. What `main` pushes onto `cleanups`
 * is stopped first, then the proxy and the servers' state. A failure is printed under `name`
 * and sets the exit code.
 */
export async function runWithE2eProxy(name, protocols, main) {
  const dir = mkdtempSync(join(tmpdir(), `omp-${name}-`));
  const cleanups = [];
  try {
    const upstream = await startUpstream('e2e', join(dir, 'upstream'));
    cleanups.push(() => upstream.stop());
    const proxy = await startProxy(join(dir, 'proxy'), upstream, { protocols, passwordHash: await hashLocalPassword(), connections: 10 });
    cleanups.push(() => proxy.stop());
    await main({ upstream, proxy, cleanups });
  } catch (err) {
    console.error(`${name} failed:`, err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
