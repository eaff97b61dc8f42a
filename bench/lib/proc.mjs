// What the benchmark reads about processes and the machine: RSS and CPU time from /proc,
// and the facts the report starts with. Linux only (the benchmark says so if /proc is absent).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields are counted after its closing ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK };
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
