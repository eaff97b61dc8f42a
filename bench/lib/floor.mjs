// What bench/pipe-floor.mjs and bench/login-floor.mjs share: a bare relay in a child process of
// its own, runs alternating between direct, that relay and the proxy, and the table that puts
// each path beside direct and beside the relay.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuSeconds } from './proc.mjs';
import { formatSummary, ratio, summarize } from './stats.mjs';

/**
 * Starts `script` (which prints the port it listens on) as a child process, so that its CPU is
 * read from /proc alone.
 */
export async function startRelay(script, args, env = process.env) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const [line] = await once(child.stdout, 'data');
  return {
    pid: child.pid,
    port: Number(String(line).trim()),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * `runs` rounds over `paths`, alternating the order. `run(path)` returns the measured value and
 * `per`, what the CPU seconds of a relay process are divided by (bytes / 1e9 gives s per GB).
 * `pids` names the paths whose relay process is measured.
 */
export async function alternateRuns(paths, pids, runs, run) {
  const names = Object.keys(paths);
  const values = Object.fromEntries(names.map((n) => [n, []]));
  const cpu = Object.fromEntries(Object.keys(pids).map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (const name of i % 2 === 0 ? names : [...names].reverse()) {
      const before = pids[name] ? cpuSeconds(pids[name]) : 0;
      const { value, per } = await run(paths[name]);
      values[name].push(value);
      if (pids[name]) cpu[name].push((cpuSeconds(pids[name]) - before) / per);
    }
  }
  return { values, cpu };
}

/** Prints one row per path: the value, its ratio to direct and to `floor`, and the relay's CPU. */
export function printFloorTable({ values, cpu }, { floor, unit, digits, cpuUnit }) {
  const s = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, summarize(v)]));
  console.log(`| Path | ${unit} | / direct | / ${floor} | ${cpuUnit} (relay process) |`);
  console.log('|---|---|---|---|---|');
  for (const name of Object.keys(values)) {
    const perUnit = cpu[name] ? formatSummary(summarize(cpu[name]), 2) : '–';
    console.log(`| ${name} | ${formatSummary(s[name], digits)} | ${ratio(s[name], s.direct).toFixed(3)} | ${ratio(s[name], s[floor]).toFixed(3)} | ${perUnit} |`);
  }
}
