// What the benchmark reads about processes and the machine: RSS and CPU time from /proc,
// and the facts the report starts with. Linux only (the benchmark says so if /proc is absent).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

/** Clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK; 100 on every Linux we know). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in kB (VmRSS of /proc/<pid>/status). */
export function rssKb(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** User + system CPU seconds of a process (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuSeconds(pid) {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** User and system CPU seconds of a process, apart. */
export function cpuTimes(pid) {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/**
 * Every process on the machine: PID → its command name and user + system CPU seconds so far.
 * A process that ends while being read is left out.
 */
export function allProcessCpu() {
  const out = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const { name, user, system } = parseStat(stat);
    out.set(Number(entry), { name, cpu: user + system });
  }
  return out;
}

/** The command name (field 2) and CPU seconds (fields 14 and 15) of a /proc/<pid>/stat line. */
function parseStat(stat) {
  // The command name may hold spaces and parentheses; fields are counted after its last ")".
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
}

/** CPU seconds of this process (the measuring client). */
export function ownCpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Raises this process's soft open-files limit by re-running under `ulimit -n` when too low. */
export function openFilesLimit() {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const parse = (v) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: parse(m?.[1] ?? '1024'), hard: parse(m?.[2] ?? '1024') };
}

export function machine() {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    // OpenSSL decides the TLS key exchange, and with it part of each session's memory: 3.5
    // (Node 22.23 here, Node 20 has 3.0) offers post-quantum ML-KEM by default (docs/decisions.md).
    openssl: process.versions.openssl,
    opensslConf: process.env.OPENSSL_CONF,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

/** The 1-minute load average (the run is noisy when it is near the core count). */
export function load1() {
  return loadavg()[0] ?? 0;
}
