// Direct and proxied measured step by step in turn. On a shared 2-core VM the machine's speed
// drifts by 10-20 % within seconds (a direct login took 16.8 ms in one run of 200 and 24.7 ms
// in the next); runs of a few seconds per path, alternating, put that drift into the ratio.
// Alternating every step (one login, one FETCH, one message) puts the two paths ~20-60 ms
// apart, so the drift falls on both alike. docs/benchmarks.md has the comparison.
import { performance } from 'node:perf_hooks';

/**
 * @typedef {{ step: () => Promise<{ ms: number, bytes: number }>, close: () => Promise<void> }} BenchSession
 *   `step()` does one unit of work (one login, one FETCH...) and resolves to the milliseconds
 *   it took, timed by the session around the work alone, and the bytes it moved.
 * @typedef {{ ms: number, steps: number, bytes: number, cpu: Record<string, number | undefined> }} Round
 */

/**
 * `rounds` rounds over two paths. Each round opens one session per path, then runs `steps`
 * steps on each, alternating the path every step in the order ABBA (so neither always goes
 * first), and measures the CPU of each step with `meter`. Returns one Round per
 * path and round: the milliseconds, bytes and CPU of its steps added up.
 *
 * @param {number} rounds
 * @param {Record<'direct' | 'proxied', unknown>} paths
 * @param {(path: any) => Promise<BenchSession>} open
 * @param {number} steps
 * @param {(fn: () => Promise<{ ms: number, bytes: number }>) => Promise<{ ms: number, bytes: number, cpu: Record<string, number | undefined> }>} meter
 * @returns {Promise<Record<'direct' | 'proxied', Round[]>>}
 */
export async function interleave(rounds, paths, open, steps, meter) {
  const result = { direct: [], proxied: [] };
  for (let r = 0; r < rounds; r++) {
    const sessions = {};
    const totals = {};
    try {
      for (const name of ['direct', 'proxied']) {
        sessions[name] = await open(paths[name]);
        totals[name] = { ms: 0, steps: 0, bytes: 0, cpu: {} };
      }
      for (let i = 0; i < 2 * steps; i++) {
        const name = Math.floor((i + 1) / 2) % 2 === 0 ? 'direct' : 'proxied'; // D P P D D P P D...
        add(totals[name], await meter(() => sessions[name].step()));
      }
    } catch (err) {
      await Promise.allSettled(Object.values(sessions).map((s) => s.close()));
      throw err;
    }
    for (const session of Object.values(sessions)) await session.close();
    result.direct.push(totals.direct);
    result.proxied.push(totals.proxied);
  }
  return result;
}

/** @param {Round} total @param {{ ms: number, bytes: number, cpu: Record<string, number | undefined> }} one */
function add(total, one) {
  total.ms += one.ms;
  total.steps += 1;
  total.bytes += one.bytes;
  for (const [who, seconds] of Object.entries(one.cpu)) {
    total.cpu[who] = seconds === undefined ? undefined : (total.cpu[who] ?? 0) + seconds;
  }
}

/** Runs `work` (which resolves to a byte count) and returns its milliseconds and bytes. */
export async function timed(work) {
  const started = performance.now();
  const bytes = await work();
  return { ms: performance.now() - started, bytes };
}

/**
 * One session from `open(path)` and `times` steps on it, one after the other (no turns): MB/s
 * (10^6 bytes) and bytes. For the floor scripts, which alternate whole runs.
 * @param {(path: any) => Promise<BenchSession>} open
 */
export async function bulkRun(open, path, times) {
  const session = await open(path);
  let ms = 0;
  let bytes = 0;
  try {
    for (let i = 0; i < times; i++) {
      const one = await session.step();
      ms += one.ms;
      bytes += one.bytes;
    }
  } catch (err) {
    // The step's error is the one worth seeing, not a QUIT or LOGOUT that fails after it.
    await session.close().catch(() => undefined);
    throw err;
  }
  await session.close();
  return { mbps: bytes / 1e3 / ms, bytes };
}
